// StepSender / StepReceiver, both directions, in one process: the engine's end (a
// ROUTER, the channel it created) and rank 0's (a DEALER, the channel attached from
// the spec). A message that fits a slot travels in the ring, one that does not takes
// the socket behind a marker, and the receiver hands them over in the order sent;
// control messages pass as they come; a step on the socket with no marker is refused.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <thread>
#include <zmq.hpp>

#include "transport/step_link.h"
#include "transport/zmq_io.h"

using namespace vela;
using namespace vela::transport;
using From = StepReceiver::From;

namespace {

constexpr uint64_t kSlotBytes = 1024;  // a step with more than ~1 kB of ids takes the socket
int64_t in_10s() { return steady_now_ns() + 10'000'000'000; }

// Both ends of one group of one rank. The worker end attaches to duplicates of the
// fds (as a child would inherit them), so each end closes its own.
struct Ends {
  zmq::context_t context;
  zmq::socket_t router{context, zmq::socket_type::router};
  zmq::socket_t dealer{context, zmq::socket_type::dealer};
  std::unique_ptr<StepChannel> engine, worker;
  std::optional<StepSender> down, up;
  std::optional<StepReceiver> steps, outputs;

  explicit Ends(bool shm) {
    router.bind("inproc://step-link");
    dealer.set(zmq::sockopt::routing_id, "w0");
    dealer.connect("inproc://step-link");
    if (shm) {
      engine = std::move(StepChannel::create(1, 4, kSlotBytes).value());
      std::string spec;
      for (int fd : engine->worker_fds(0)) spec += (spec.empty() ? "" : ":") + std::to_string(::dup(fd));
      worker = std::move(StepChannel::attach(spec, 0).value());
    }
    down.emplace(engine.get(), [this](const msg::Frames& f) {
      return send_frames(router, f, "w0") ? ok_status() : make_error("send_failed", "router");
    });
    up.emplace(worker.get(), [this](const msg::Frames& f) {
      return send_frames(dealer, f) ? ok_status() : make_error("send_failed", "dealer");
    });
    steps.emplace(dealer, worker.get(), msg::MsgType::kSchedulerOutput);
    outputs.emplace(router, engine.get(), msg::MsgType::kModelRunnerOutput);
  }
};

// Step `id`; `big` makes it too large for a slot.
msg::Frames step(uint64_t id, bool big) {
  SchedulerOutput s;
  s.step_id = id;
  if (big) s.finished_req_ids.assign(40, std::string(64, 'x'));
  return msg::encode(s, id);
}
msg::Frames output(uint64_t id, bool big) {
  ModelRunnerOutput o;
  o.step_id = id;
  if (big) o.request_ids.assign(40, std::string(64, 'y'));
  return msg::encode(o, id);
}

// The next message (waiting up to 5 s): where it came from and its envelope.
std::pair<From, msg::Envelope> next(StepReceiver& r, std::string* identity = nullptr) {
  msg::Frames frames;
  const int64_t deadline = steady_now_ns() + 5'000'000'000;
  while (true) {
    auto from = r.receive(frames, identity);
    REQUIRE(from.ok());
    if (*from != From::kNothing) return {*from, msg::peek_envelope(frames[0]).value()};
    REQUIRE(steady_now_ns() < deadline);
    r.wait(0, 100);
  }
}

}  // namespace

TEST_CASE("StepLink: steps that fit a slot take the ring, larger ones the socket, in the order sent") {
  Ends e(true);
  // Down: small, big, big, small (each takes one of the 4 slots: a step or its
  // marker); a control message on the socket meanwhile.
  const std::vector<bool> big = {false, true, true, false};
  for (size_t i = 0; i < big.size(); ++i) REQUIRE(e.down->send(step(i + 1, big[i]), in_10s()).ok());
  REQUIRE(send_frames(e.router, msg::encode(Heartbeat{0, 7}, 99), "w0"));
  std::vector<uint64_t> step_ids;
  bool heartbeat = false;
  for (size_t got = 0; got < big.size() || !heartbeat;) {
    auto [from, env] = next(*e.steps);
    if (env.type == msg::MsgType::kHeartbeat) {
      CHECK(from == From::kSocket);
      heartbeat = true;
      continue;
    }
    REQUIRE(env.type == msg::MsgType::kSchedulerOutput);
    CHECK(from == (big[got] ? From::kSocket : From::kRing));
    step_ids.push_back(env.id);
    ++got;
  }
  CHECK(step_ids == std::vector<uint64_t>{1, 2, 3, 4});

  // Up, the same protocol: rank 0's outputs, in order, whichever way each went.
  for (size_t i = 0; i < big.size(); ++i) REQUIRE(e.up->send(output(i + 1, !big[i]), in_10s()).ok());
  for (size_t i = 0; i < big.size(); ++i) {
    std::string identity;
    auto [from, env] = next(*e.outputs, &identity);
    CHECK(env.id == i + 1);
    CHECK(from == (!big[i] ? From::kSocket : From::kRing));
    if (from == From::kSocket) CHECK(identity == "w0");
  }
  msg::Frames none;
  CHECK(*e.steps->receive(none) == From::kNothing);
  CHECK(*e.outputs->receive(none) == From::kNothing);
}

TEST_CASE("StepLink: without a channel everything takes the socket") {
  Ends e(false);
  REQUIRE(e.down->send(step(1, false), in_10s()).ok());
  REQUIRE(e.down->send(step(2, true), in_10s()).ok());
  CHECK(next(*e.steps).first == From::kSocket);
  CHECK(next(*e.steps).second.id == 2);
}

TEST_CASE("StepLink: a step on the socket with no marker in the ring is a protocol error") {
  Ends e(true);
  REQUIRE(send_frames(e.router, step(1, false), "w0"));
  msg::Frames frames;
  Result<From> from = From::kNothing;
  for (int i = 0; i < 100 && from.ok() && *from == From::kNothing; ++i) {
    e.steps->wait(0, 50);
    from = e.steps->receive(frames);
  }
  REQUIRE_FALSE(from.ok());
  CHECK(from.error().code == "protocol");
}

TEST_CASE("StepLink: 3000 mixed steps from another thread arrive once and in order; a sleeping receiver is woken") {
  // The receiver often reads the socket before the marker it races with is in the
  // ring, and then holds the step until the ring's records before it are handed over.
  Ends e(true);
  constexpr uint64_t kSteps = 3000;
  std::atomic<bool> sent_all{true};
  std::thread sender([&] {
    for (uint64_t i = 1; i <= kSteps; ++i) {
      if (!e.down->send(step(i, i % 3 == 0 || i % 7 == 0), in_10s()).ok()) {
        sent_all = false;
        return;
      }
      if (i % 500 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the receiver sleeps
    }
  });
  uint64_t expected = 1;
  size_t on_socket = 0;
  while (expected <= kSteps) {
    auto [from, env] = next(*e.steps);
    REQUIRE(env.id == expected);
    on_socket += from == From::kSocket;
    ++expected;
  }
  sender.join();
  CHECK(sent_all);
  CHECK(on_socket == kSteps / 3 + kSteps / 7 - kSteps / 21);
}
