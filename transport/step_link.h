#pragma once
// StepSender / StepReceiver: the step path's protocol, written once for both ends.
// The engine sends SchedulerOutputs down and receives rank 0's ModelRunnerOutputs up;
// a worker receives steps and (rank 0) sends its outputs up.
//
// A message goes through the StepChannel's ring when it fits a slot. One that does
// not goes on the ZeroMQ socket, and the ring carries a kOnSocket marker for it,
// published before the socket send: the receiver reads the ring up to the marker,
// then takes the next step-path message from the socket (one that arrives before its
// marker is read waits until the ring's records before it are handed over). So
// messages come out in the order they were sent, whichever way each went. Control
// messages (every other type) share the socket and are handed over as they come.
// Without a channel (`parallel.step_channel: socket`) everything is on the socket.
//
// A receiver that sleeps is woken by the ring's writer through its eventfd (ShmRing's
// Dekker handshake); wait() spins, then sleeps on the socket, that fd and the
// caller's own fds together.
#include <zmq.hpp>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "messages/codec.h"
#include "transport/step_channel.h"

namespace vela::transport {

class StepSender {
 public:
  // Sends one message on the socket (the engine's: to every rank).
  using SocketSend = std::function<Status(const msg::Frames&)>;
  // channel: this end's StepChannel, or null (everything on the socket).
  StepSender(StepChannel* channel, SocketSend send_on_socket);

  // Sends one step-path message. Waits for a free ring slot until deadline_ns
  // (steady clock), then fails with the ring's "ring_full" error naming the laggard.
  Status send(const msg::Frames& frames, int64_t deadline_ns);

 private:
  ShmRing* ring_;  // null: socket only
  SocketSend send_on_socket_;
};

class StepReceiver {
 public:
  enum class From { kNothing, kRing, kSocket };
  // step_type: the type that travels the step path toward this end (kSchedulerOutput
  // for a worker, kModelRunnerOutput for the engine). channel: null = socket only.
  StepReceiver(zmq::socket_t& socket, StepChannel* channel, msg::MsgType step_type);

  // The next message, in order, into `frames` (reused: no allocation once warm);
  // `identity` gets a ROUTER's peer for a socket message (pass it for a ROUTER).
  // kNothing when nothing is ready. Errors: a malformed ring record, or a step-path
  // message on the socket with no marker for it in the ring.
  Result<From> receive(msg::Frames& frames, std::string* identity = nullptr);

  // Waits until receive() may have something, one of `extra` is readable (its
  // revents say which), or timeout_ms pass. Spins on the ring for spin_ns first: the
  // next message is often microseconds away.
  void wait(int64_t spin_ns, int timeout_ms, std::span<zmq::pollitem_t> extra = {});

 private:
  bool ring_live() const { return ring_ != nullptr && !awaiting_socket_; }
  void hold(msg::Frames& frames, std::string* identity);

  zmq::socket_t& socket_;
  ShmRing* ring_;  // null: socket only
  uint32_t reader_ = 0;
  int wake_fd_ = -1;
  msg::MsgType step_type_;
  bool awaiting_socket_ = false;  // the ring's next record is a message on the socket
  bool held_ = false;             // held_frames_: a socket message that beat its marker
  msg::Frames held_frames_;
  std::string held_identity_;
  std::vector<zmq::pollitem_t> items_;
};

}  // namespace vela::transport
