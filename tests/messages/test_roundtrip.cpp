#include <catch2/catch.hpp>

#include "sample_messages.h"

using namespace vela;
using namespace std::string_literals;


TEST_CASE("every message type survives an encode/decode round trip") {
  uint64_t id = 1;
  for (const auto& m : test::sample_messages()) {
    auto frames = msg::encode(m, id, 1000 + static_cast<int64_t>(id));
    auto decoded = msg::decode(frames);
    INFO(msg::msg_type_name(msg::type_of(m)));
    REQUIRE(decoded.ok());
    CHECK(decoded->envelope.version == msg::kProtocolVersion);
    CHECK(decoded->envelope.id == id);
    CHECK(decoded->envelope.send_time_ns == 1000 + static_cast<int64_t>(id));
    CHECK(decoded->envelope.type == msg::type_of(m));
    REQUIRE(decoded->message.index() == m.index());
    std::visit(
        [&](const auto& original) {
          using T = std::decay_t<decltype(original)>;
          CHECK(original == std::get<T>(decoded->message));
        },
        m);
    ++id;
  }
}

TEST_CASE("logprob arrays travel in extra frames, not in the msgpack body") {
  ModelRunnerOutput mro;
  mro.request_ids = {"r"};
  mro.sampled_token_ids = {{1}};
  mro.logprobs.num_top = 20;
  mro.logprobs.row_offsets = {0};
  mro.logprobs.sampled_logprobs.assign(1, -1.0f);
  mro.logprobs.top_ids.assign(20, 7);
  mro.logprobs.top_logprobs.assign(20, -3.0f);
  auto frames = msg::encode(mro, 1);
  REQUIRE(frames.size() == 4);
  CHECK(frames[1].size() == sizeof(float));
  CHECK(frames[2].size() == 20 * sizeof(int32_t));
  CHECK(frames[3].size() == 20 * sizeof(float));
  CHECK(frames[0].size() < 100);
}

TEST_CASE("a decoder fills fields an older sender did not know with defaults") {
  // An Ack body with only its first field: [version, type, id, ts, [rank]].
  std::string frame = "\x95\x01\x11\x05\x00\x91\x07"s;
  auto d = msg::decode({frame});
  REQUIRE(d.ok());
  CHECK(std::get<Ack>(d->message).rank == 7);
  CHECK(std::get<Ack>(d->message).of_id == 0);
}

TEST_CASE("bad envelopes give typed errors") {
  CHECK(msg::decode({}).error().code == "no_frames");
  auto good = msg::encode(Heartbeat{1, 2}, 3);
  std::string bad_version = good[0];
  bad_version[1] = 0x09;
  CHECK(msg::decode({bad_version}).error().code == "bad_version");
  std::string bad_type = good[0];
  bad_type[2] = 0x7f;
  CHECK(msg::decode({bad_type}).error().code == "unknown_type");
  CHECK(msg::decode({good[0].substr(0, good[0].size() - 1)}).error().code == "truncated");
  CHECK(msg::decode({good[0] + "x"}).error().code == "malformed");
  msg::DecodeLimits small;
  small.max_frame_bytes = 4;
  CHECK(msg::decode(good, small).error().code == "frame_too_large");
  CHECK(msg::decode(msg::Frames(100, good[0])).error().code == "too_many_frames");
}

TEST_CASE("a field of the wrong type is named in the error") {
  // InitKVCache body whose num_blocks is a string.
  std::string frame = "\x95\x01\x0d\x05\x00\x92\xa3" "abc" "\x10"s;
  auto d = msg::decode({frame});
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().code == "bad_field");
  CHECK(d.error().message.find("InitKVCache.num_blocks") != std::string::npos);
  // Negative value for an unsigned field.
  std::string neg = "\x95\x01\x0e\x05\x00\x92\x01\xff"s;
  auto h = msg::decode({neg});
  REQUIRE_FALSE(h.ok());
  CHECK(h.error().message.find("Heartbeat.sequence") != std::string::npos);
}

TEST_CASE("a blob index pointing past the frames is rejected") {
  ModelRunnerOutput mro;
  mro.logprobs.sampled_logprobs = {1.0f};
  auto frames = msg::encode(mro, 1);
  frames.resize(1);
  auto d = msg::decode(frames);
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().code == "bad_blob");
}
