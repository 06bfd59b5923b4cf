#include "transport/step_link.h"

#include <utility>

#include "transport/zmq_io.h"

namespace vela::transport {

StepSender::StepSender(StepChannel* channel, SocketSend send_on_socket)
    : ring_(channel ? &channel->outbox() : nullptr), send_on_socket_(std::move(send_on_socket)) {}

Status StepSender::send(const msg::Frames& frames, int64_t deadline_ns) {
  if (!ring_) return send_on_socket_(frames);
  static const ShmFrames kMarker;
  const bool fits = ring_->fits(frames);
  VELA_TRY(ring_->write(fits ? frames : kMarker, fits ? StepChannel::kMessage : StepChannel::kOnSocket, deadline_ns));
  return fits ? ok_status() : send_on_socket_(frames);
}

StepReceiver::StepReceiver(zmq::socket_t& socket, StepChannel* channel, msg::MsgType step_type)
    : socket_(socket), ring_(channel ? &channel->inbox() : nullptr), reader_(channel ? channel->reader() : 0),
      wake_fd_(channel ? channel->wake_fd() : -1), step_type_(step_type) {}

void StepReceiver::hold(msg::Frames& frames, std::string* identity) {
  std::swap(frames, held_frames_);
  if (identity) std::swap(*identity, held_identity_);
}

Result<StepReceiver::From> StepReceiver::receive(msg::Frames& frames, std::string* identity) {
  while (true) {
    if (ring_live()) {
      uint32_t tag = 0;
      VELA_TRY_ASSIGN(const bool got, ring_->read(reader_, frames, &tag));
      if (got && tag != StepChannel::kOnSocket) return From::kRing;
      if (got) {
        awaiting_socket_ = true;
        continue;
      }
    }
    if (held_) {  // the ring is read up to the held message's marker, or empty
      if (!awaiting_socket_)
        return make_error("protocol", std::string("a ") + msg::msg_type_name(step_type_) +
                                          " arrived on the socket without its marker in the shared-memory ring");
      held_ = awaiting_socket_ = false;
      hold(frames, identity);
      return From::kSocket;
    }
    if (!recv_frames_into(socket_, frames, identity)) return From::kNothing;
    if (!ring_ || frames.empty()) return From::kSocket;
    const auto envelope = msg::peek_envelope(frames[0]);
    if (!envelope || envelope->type != step_type_) return From::kSocket;  // control: as it comes
    if (awaiting_socket_) {
      awaiting_socket_ = false;
      return From::kSocket;
    }
    // Here before its marker was read: the ring's records before the marker go first.
    hold(frames, identity);
    held_ = true;
  }
}

void StepReceiver::wait(int64_t spin_ns, int timeout_ms, std::span<zmq::pollitem_t> extra) {
  for (auto& item : extra) item.revents = 0;
  // While a message is awaited on the socket the ring is not read, so not waited on.
  const bool ring = ring_live();
  if (ring && spin_ns > 0 && ring_->spin(reader_, spin_ns)) return;
  if (ring && !ring_->begin_sleep(reader_)) return;
  items_.clear();
  items_.push_back({static_cast<void*>(socket_), 0, ZMQ_POLLIN, 0});
  if (ring) items_.push_back({nullptr, wake_fd_, ZMQ_POLLIN, 0});
  const size_t first_extra = items_.size();
  items_.insert(items_.end(), extra.begin(), extra.end());
  zmq::poll(items_.data(), items_.size(), std::chrono::milliseconds(timeout_ms));
  if (ring) ring_->end_sleep(reader_, wake_fd_);
  for (size_t i = 0; i < extra.size(); ++i) extra[i].revents = items_[first_extra + i].revents;
}

}  // namespace vela::transport
