#include "transport/trace_record.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "messages/codec.h"

namespace vela {

std::string to_json_line(const TraceRecord& r) {
  nlohmann::json j = {{"type", r.type},       {"from", r.from},
                      {"to", r.to},           {"bytes", r.bytes},
                      {"step", r.step_id},    {"request_id", r.request_id},
                      {"send_ns", r.send_time_ns}, {"recv_ns", r.recv_time_ns}};
  return j.dump();
}

TraceRecord received_record(const msg::Envelope& envelope, std::string from, std::string to,
                            const std::vector<std::string>& frames, int64_t recv_time_ns) {
  TraceRecord r;
  r.type = msg::msg_type_name(envelope.type);
  r.from = std::move(from);
  r.to = std::move(to);
  for (const auto& f : frames) r.bytes += f.size();
  r.step_id = envelope.id;
  r.send_time_ns = envelope.send_time_ns;
  r.recv_time_ns = recv_time_ns;
  return r;
}

TraceFile::TraceFile(const std::string& path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

TraceFile::~TraceFile() {
  if (fd_ >= 0) ::close(fd_);
}

void TraceFile::append(const TraceRecord& record) {
  if (fd_ < 0) return;
  std::string line = to_json_line(record);
  line.push_back('\n');
  // Lines are far below the size where a regular-file append could be split.
  ssize_t n = ::write(fd_, line.data(), line.size());
  (void)n;
}

}  // namespace vela
