// Async scheduling's placeholders: a worker fills each with the token it sampled for
// that request in the step before; they survive the wire (negative ids).
#include <catch2/catch.hpp>

#include "messages/codec.h"
#include "messages/step_placeholders.h"

using namespace vela;

namespace {

SchedulerOutput step_with_placeholders() {
  SchedulerOutput s;
  s.step_id = 8;
  auto& c = s.scheduled_cached_reqs;
  c.request_ids = {"a", "b", "c"};
  c.resumed_from_preemption = {0, 0, 0};
  c.new_token_ids = {{kPlaceholderToken}, {}, {42, kPlaceholderToken}};
  c.new_block_ids = {{}, {}, {}};
  c.num_computed_tokens = {5, 9, 7};
  return s;
}

}  // namespace

TEST_CASE("placeholders are filled from the previous step's rows, in any row order") {
  SchedulerOutput s = step_with_placeholders();
  CHECK(count_placeholders(s) == 2);
  ModelRunnerOutput previous;
  previous.step_id = 7;
  previous.request_ids = {"c", "b", "a"};
  previous.sampled_token_ids = {{13}, {}, {11}};
  REQUIRE(fill_placeholders(s, previous).ok());
  CHECK(s.scheduled_cached_reqs.new_token_ids == std::vector<std::vector<int32_t>>{{11}, {}, {42, 13}});
  CHECK(count_placeholders(s) == 0);
}

TEST_CASE("a placeholder for a request the previous step did not sample is an error naming it") {
  SchedulerOutput s = step_with_placeholders();
  ModelRunnerOutput previous;
  previous.step_id = 7;
  previous.request_ids = {"a", "c"};
  previous.sampled_token_ids = {{11}, {}};  // c: a partial prefill chunk
  auto filled = fill_placeholders(s, previous);
  REQUIRE_FALSE(filled.ok());
  CHECK(filled.error().field == "scheduled_cached_reqs.new_token_ids[2]");
  CHECK_THAT(filled.error().message, Catch::Contains("request 'c'") && Catch::Contains("sampled nothing"));
}

TEST_CASE("tokens gathered from rank 0 fill the placeholders of another rank in the same order") {
  SchedulerOutput rank0 = step_with_placeholders();
  SchedulerOutput rank1 = rank0;
  ModelRunnerOutput previous;
  previous.request_ids = {"a", "c"};
  previous.sampled_token_ids = {{11}, {13}};
  std::vector<int32_t> tokens;
  REQUIRE(collect_placeholder_tokens(rank0, previous, tokens).ok());
  CHECK(tokens == std::vector<int32_t>{11, 13});
  REQUIRE(fill_placeholders_from(rank1, tokens).ok());
  REQUIRE(fill_placeholders(rank0, previous).ok());
  CHECK(rank0 == rank1);
  CHECK_FALSE(fill_placeholders_from(rank1 = step_with_placeholders(), std::vector<int32_t>{1}).ok());
}

TEST_CASE("a step with placeholders survives the wire") {
  const SchedulerOutput s = step_with_placeholders();
  auto decoded = msg::decode(msg::encode(s, s.step_id));
  REQUIRE(decoded.ok());
  const auto* back = std::get_if<SchedulerOutput>(&decoded->message);
  REQUIRE(back != nullptr);
  CHECK(*back == s);
}
