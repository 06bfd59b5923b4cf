#pragma once
// Wire format: frame 0 is a msgpack array [version, type, id, send_time_ns, body];
// bulk binary (BinaryBlob fields, e.g. logprob arrays) travels in extra frames
// referenced by index from the body. Decoding never throws, never aborts and never
// allocates more than a small multiple of the frame's size: bad input is a Result
// error naming what was wrong.
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "common/result.h"
#include "messages/engine_core_output.h"
#include "messages/engine_core_request.h"
#include "messages/model_runner_output.h"
#include "messages/scheduler_output.h"
#include "messages/worker_control.h"

namespace vela::msg {

inline constexpr uint32_t kProtocolVersion = 1;

enum class MsgType : uint16_t {
  kEngineCoreRequest = 1,
  kAbortRequests = 2,
  kEngineCoreOutputs = 3,
  kSchedulerOutput = 4,
  kModelRunnerOutput = 5,
  kHello = 10,
  kLoadModel = 11,
  kProfileResult = 12,
  kInitKVCache = 13,
  kHeartbeat = 14,
  kShutdown = 15,
  kError = 16,
  kAck = 17,
};

const char* msg_type_name(MsgType t);

using Frames = std::vector<std::string>;

struct Envelope {
  uint32_t version = kProtocolVersion;
  MsgType type = MsgType::kError;
  uint64_t id = 0;            // step id for step messages, a sequence number otherwise
  int64_t send_time_ns = 0;   // sender's wall clock (ns since epoch)
};

struct DecodeLimits {
  size_t max_frame_bytes = size_t{256} << 20;  // any frame larger is rejected
  size_t max_frames = 16;
  uint32_t max_depth = 16;                     // msgpack nesting
};

using Message = std::variant<EngineCoreRequest, AbortRequests, EngineCoreOutputs, SchedulerOutput,
                             ModelRunnerOutput, Hello, LoadModel, ProfileResult, InitKVCache,
                             Heartbeat, Shutdown, ErrorMessage, Ack>;

struct Decoded {
  Envelope envelope;
  Message message;
};

// Encodes any message into frames. send_time_ns = 0 means "now".
Frames encode(const Message& message, uint64_t id, int64_t send_time_ns = 0);
// Same, into `frames` (resized to the message's frame count; frame 0 keeps its
// capacity, so a reused Frames encodes a step without allocating). The overloads for
// the two step messages skip building a Message (a deep copy of the step).
void encode_into(const Message& message, uint64_t id, int64_t send_time_ns, Frames& frames);
void encode_into(const SchedulerOutput& step, uint64_t id, int64_t send_time_ns, Frames& frames);
void encode_into(const ModelRunnerOutput& output, uint64_t id, int64_t send_time_ns, Frames& frames);

// Decodes frames produced by encode(); every failure is an Error whose code is one of
// "no_frames", "too_many_frames", "frame_too_large", "malformed", "truncated",
// "bad_version", "unknown_type", "bad_field", "bad_blob" and whose message names the
// field when one is at fault.
// One pass over the bytes: each value is checked and converted where it lies.
Result<Decoded> decode(const Frames& frames, const DecodeLimits& limits = {});
// Same, into `message`: when it already holds the decoded type its vectors and
// strings are reused (no allocation for a step like the last one). On error
// `message` holds partial contents and must not be used.
Result<Envelope> decode_into(const Frames& frames, Message& message, const DecodeLimits& limits = {});

// Reads only the envelope of frame 0 (cheap routing without decoding the body).
Result<Envelope> peek_envelope(const std::string& frame0, const DecodeLimits& limits = {});

MsgType type_of(const Message& message);

}  // namespace vela::msg
