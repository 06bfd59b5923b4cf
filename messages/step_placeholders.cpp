#include "messages/step_placeholders.h"

namespace vela {
namespace {

// The row of `previous` for `id`: first where the last one was found + 1 (steps keep
// their order), else a scan.
const std::vector<int32_t>* sampled_for(const ModelRunnerOutput& previous, const std::string& id, size_t& hint) {
  const size_t n = std::min(previous.request_ids.size(), previous.sampled_token_ids.size());
  for (size_t k = 0; k < n; ++k) {
    const size_t row = (hint + k) % n;
    if (previous.request_ids[row] == id) {
      hint = row + 1;
      return &previous.sampled_token_ids[row];
    }
  }
  return nullptr;
}

}  // namespace

size_t count_placeholders(const SchedulerOutput& step) {
  size_t n = 0;
  for (const auto& tokens : step.scheduled_cached_reqs.new_token_ids)
    for (int32_t t : tokens) n += t == kPlaceholderToken;
  return n;
}

Status collect_placeholder_tokens(const SchedulerOutput& step, const ModelRunnerOutput& previous,
                                  std::vector<int32_t>& tokens) {
  tokens.clear();
  const CachedRequestData& cached = step.scheduled_cached_reqs;
  size_t hint = 0;
  for (size_t i = 0; i < cached.new_token_ids.size() && i < cached.request_ids.size(); ++i) {
    const std::vector<int32_t>& row = cached.new_token_ids[i];
    size_t num_placeholders = 0;
    for (int32_t t : row) num_placeholders += t == kPlaceholderToken;
    if (num_placeholders == 0) continue;
    const std::vector<int32_t>* sampled = sampled_for(previous, cached.request_ids[i], hint);
    // One pending token per request and step: the last one it sampled.
    if (sampled == nullptr || sampled->empty() || num_placeholders != 1)
      return field_error("bad_placeholder",
                         "scheduled_cached_reqs.new_token_ids[" + std::to_string(i) + "]",
                         "request '" + cached.request_ids[i] + "': " + std::to_string(num_placeholders) +
                             " placeholder(s) but step " + std::to_string(previous.step_id) +
                             (sampled == nullptr || sampled->empty() ? " sampled nothing for it" : " sampled one token"));
    tokens.push_back(sampled->back());
  }
  return ok_status();
}

Status fill_placeholders_from(SchedulerOutput& step, std::span<const int32_t> tokens) {
  size_t next = 0;
  for (auto& row : step.scheduled_cached_reqs.new_token_ids)
    for (int32_t& t : row)
      if (t == kPlaceholderToken) {
        if (next == tokens.size())
          return make_error("bad_placeholder", "step " + std::to_string(step.step_id) + " has more placeholders than the " +
                                                   std::to_string(tokens.size()) + " tokens given");
        t = tokens[next++];
      }
  return ok_status();
}

Status fill_placeholders(SchedulerOutput& step, const ModelRunnerOutput& previous) {
  thread_local std::vector<int32_t> tokens;
  VELA_TRY(collect_placeholder_tokens(step, previous, tokens));
  return fill_placeholders_from(step, tokens);
}

}  // namespace vela
