// Feeds random and mutated frames to the decoder: every outcome must be a value or
// a typed error (run under ASan/UBSan by the asan preset).
#include <catch2/catch.hpp>

#include <random>

#include "sample_messages.h"

using namespace vela;
using namespace std::string_literals;

TEST_CASE("random bytes never crash the decoder") {
  std::mt19937_64 rng(1);
  size_t errors = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string frame(rng() % 64, '\0');
    for (auto& c : frame) c = static_cast<char>(rng());
    if (i % 2 == 0 && !frame.empty()) frame[0] = static_cast<char>(0x95);  // looks like an envelope
    auto d = msg::decode({frame});
    if (!d.ok()) {
      ++errors;
      CHECK_FALSE(d.error().code.empty());
    }
  }
  CHECK(errors > 19000);
}

TEST_CASE("mutated valid frames decode or fail cleanly") {
  std::mt19937_64 rng(2);
  auto messages = test::sample_messages();
  size_t decoded_ok = 0, failed = 0;
  for (int i = 0; i < 30000; ++i) {
    const auto& m = messages[rng() % messages.size()];
    auto frames = msg::encode(m, rng());
    std::string& f = frames[0];
    switch (rng() % 5) {
      case 0:  // flip bytes
        for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k) f[rng() % f.size()] = static_cast<char>(rng());
        break;
      case 1:  // truncate
        f.resize(rng() % f.size());
        break;
      case 2:  // absurd container size: array32 header claiming 2^32-1 elements
        f.insert(rng() % f.size(), std::string("\xdd\xff\xff\xff\xff", 5));
        break;
      case 3:  // absurd string size
        f.insert(rng() % f.size(), std::string("\xdb\x7f\xff\xff\xff", 5));
        break;
      case 4:  // drop or corrupt extra frames
        if (frames.size() > 1) frames.pop_back();
        else f[rng() % f.size()] ^= 0x40;
        break;
    }
    auto d = msg::decode(frames);
    (d.ok() ? decoded_ok : failed)++;
  }
  CHECK(failed > 10000);
  CHECK(decoded_ok + failed == 30000);
}

TEST_CASE("deep nesting is refused without recursion blow-up") {
  std::string frame = "\x95\x01\x01\x00\x00"s;
  frame += std::string(100000, '\x91');
  frame += '\xc0';
  auto d = msg::decode({frame});
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().code == "malformed");
}
