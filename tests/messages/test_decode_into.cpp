// decode_into / encode_into: the buffer-reusing forms used on the step path must give
// exactly what decode() gives, whatever the target held before.
#include <catch2/catch.hpp>

#include <random>

#include "sample_messages.h"

using namespace vela;
using namespace std::string_literals;

namespace {
SchedulerOutput big_step(int n, int salt) {
  SchedulerOutput s;
  s.step_id = 1000 + salt;
  for (int i = 0; i < n; ++i) {
    const std::string id = "request-with-a-long-id-" + std::to_string(i * 7 + salt);
    s.scheduled_cached_reqs.request_ids.push_back(id);
    s.scheduled_cached_reqs.resumed_from_preemption.push_back(uint8_t(i % 3 == 0));
    s.scheduled_cached_reqs.new_token_ids.push_back(std::vector<int32_t>(1 + i % 4, salt + i));
    s.scheduled_cached_reqs.new_block_ids.push_back(std::vector<int32_t>(i % 2, i));
    s.scheduled_cached_reqs.num_computed_tokens.push_back(100 + i);
    s.num_scheduled_tokens.emplace_back(id, 1 + i % 5);
  }
  s.total_num_scheduled_tokens = n;
  if (salt % 2) s.finished_req_ids = {"gone-" + std::to_string(salt)};
  return s;
}
}  // namespace

TEST_CASE("decode_into a message of the same type equals a fresh decode") {
  msg::Message reused = big_step(300, 1);  // larger and different: every buffer is stale
  for (int n : {256, 10, 0, 257}) {
    const SchedulerOutput want = big_step(n, n + 2);
    msg::Frames frames;
    msg::encode_into(want, want.step_id, 77, frames);
    CHECK(frames == msg::encode(msg::Message{want}, want.step_id, 77));
    auto env = msg::decode_into(frames, reused);
    REQUIRE(env.ok());
    CHECK(env->type == msg::MsgType::kSchedulerOutput);
    CHECK(env->id == want.step_id);
    REQUIRE(std::holds_alternative<SchedulerOutput>(reused));
    CHECK(std::get<SchedulerOutput>(reused) == want);
  }
}

TEST_CASE("decode_into switches type when the frame holds another message") {
  msg::Message reused = big_step(5, 3);
  for (const auto& m : test::sample_messages()) {
    auto frames = msg::encode(m, 9);
    auto env = msg::decode_into(frames, reused);
    REQUIRE(env.ok());
    CHECK(reused == m);
  }
}

TEST_CASE("fields an older sender lacks are reset to defaults, a newer sender's extras skipped") {
  msg::Message reused = Heartbeat{1, 99};
  // Heartbeat body with only `rank`: sequence must not keep 99.
  auto env = msg::decode_into({"\x95\x01\x0e\x05\x00\x91\x07"s}, reused);
  REQUIRE(env.ok());
  CHECK(std::get<Heartbeat>(reused).rank == 7);
  CHECK(std::get<Heartbeat>(reused).sequence == 0);
  // Heartbeat body with a third field {"x": [1, 2]} from a newer sender.
  auto d = msg::decode({"\x95\x01\x0e\x05\x00\x93\x07\x08\x81\xa1x\x92\x01\x02"s});
  REQUIRE(d.ok());
  CHECK(std::get<Heartbeat>(d->message).sequence == 8);
  // ...but its extras must still be well-formed: truncated inside the skipped map.
  auto bad = msg::decode({"\x95\x01\x0e\x05\x00\x93\x07\x08\x81\xa1x\x92\x01"s});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == "truncated");
}

TEST_CASE("a wrong element type is named with its index") {
  SchedulerOutput s = big_step(3, 0);
  auto frames = msg::encode(s, 1);
  const std::string id = s.scheduled_cached_reqs.request_ids[1];
  const size_t at = frames[0].find(id);
  REQUIRE(at != std::string::npos);
  std::string& f = frames[0];
  // fixstr header (0xa0 | len) then len bytes; an ext8 of len - 2 data bytes takes the
  // same space (0xc7, size, type, data): well-formed msgpack, but not a string.
  REQUIRE(id.size() > 2);
  f[at - 1] = '\xc7';
  f[at] = static_cast<char>(id.size() - 2);
  f[at + 1] = '\x01';
  auto d = msg::decode(frames);
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().code == "bad_field");
  CHECK(d.error().message.find("SchedulerOutput.scheduled_cached_reqs.request_ids[1]") != std::string::npos);
}

TEST_CASE("mutated frames decoded into a reused message fail or match a fresh decode") {
  std::mt19937_64 rng(3);
  msg::Message reused = big_step(50, 1);
  const auto base = msg::encode(big_step(20, 4), 5);
  size_t failed = 0;
  for (int i = 0; i < 5000; ++i) {
    auto frames = base;
    std::string& f = frames[0];
    for (int k = 0; k < 1 + int(rng() % 3); ++k) f[rng() % f.size()] = static_cast<char>(rng());
    auto fresh = msg::decode(frames);
    auto env = msg::decode_into(frames, reused);
    REQUIRE(fresh.ok() == env.ok());
    if (!env.ok()) {
      ++failed;
      CHECK(env.error().code == fresh.error().code);
      reused = big_step(50, i);  // partial contents are not to be used
    } else {
      CHECK(reused == fresh->message);
    }
  }
  CHECK(failed > 500);
}
