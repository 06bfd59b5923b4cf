#pragma once
// StepSender / StepReceiver: the step path's protocol, written once for both ends:
// the engine sends steps down and receives rank 0's outputs up; a worker receives
// steps and (rank 0) sends outputs up. A message takes the StepChannel's ring when it
// fits a slot; otherwise the socket, behind a kOnSocket marker in the ring published
// before the send. The receiver reads the ring up to a marker, then takes the next
// step-path message from the socket (one that beats its marker is held until the
// ring's records before it are handed over): messages come out in the order sent.
// Control messages share the socket and pass as they come. No channel: all socket.
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
  StepSender(StepChannel* channel, SocketSend send_on_socket);  // channel: null = socket only

  // Waits for a free ring slot until deadline_ns (steady clock), then fails with the
  // ring's "ring_full" error naming the reader that lags.
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

  // The next message into `frames` (reused: no allocation once warm); `identity`
  // gets a ROUTER's peer. Errors: a malformed ring record, a step-path message on the
  // socket with no marker for it.
  Result<From> receive(msg::Frames& frames, std::string* identity = nullptr);

  // Until receive() may have something, one of `extra` is readable (see revents) or
  // timeout_ms pass: spins on the ring for spin_ns, then sleeps on the socket, the
  // ring's eventfd (ShmRing's Dekker handshake) and `extra`.
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
