#pragma once
// Placeholders for tokens not sampled yet (async scheduling). The scheduler plans
// step N+1 while step N runs, so a request sampled in step N has a next token whose
// position is known and whose id is not: step N+1 lists kPlaceholderToken at its
// place in CachedRequestData::new_token_ids. The worker that runs the steps in order
// knows the id (it sampled it in step N) and fills it in before it reads the step:
// a placeholder always means "the token sampled for this request in the step before".
#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "messages/model_runner_output.h"
#include "messages/scheduler_output.h"

namespace vela {

inline constexpr int32_t kPlaceholderToken = -1;

// How many placeholders the step carries.
size_t count_placeholders(const SchedulerOutput& step);

// Replaces each placeholder of `step` with the token `previous` (the output of the
// step before, on the rank that sampled it) gave that request, in order. Every rank
// must see the same tokens: ranks that do not sample get them as `tokens` (see
// fill_placeholders_from) from rank 0's collect_placeholder_tokens.
Status fill_placeholders(SchedulerOutput& step, const ModelRunnerOutput& previous);

// Rank 0: the token for each placeholder of `step`, in order (what fill_placeholders
// would write), for ranks that did not sample.
Status collect_placeholder_tokens(const SchedulerOutput& step, const ModelRunnerOutput& previous,
                                  std::vector<int32_t>& tokens);
// Writes tokens[i] into the i-th placeholder of `step`.
Status fill_placeholders_from(SchedulerOutput& step, std::span<const int32_t> tokens);

}  // namespace vela
