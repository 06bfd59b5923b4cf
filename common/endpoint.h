#pragma once
// ZeroMQ endpoint names as a config may give them: ipc://PATH or tcp://HOST:PORT.
// Parsed once, at config load, so a bad scheme is refused naming its key before any
// model loads; and the one rule of what "stays on this host" is (is_loopback_host).
#include <string>

#include "common/result.h"

namespace vela {

struct Endpoint {
  std::string scheme;  // "ipc" | "tcp"
  std::string path;    // ipc: the socket file (absolute)
  std::string host;    // tcp: bind address or name ("127.0.0.1", "[::1]", "*", "eth0", ...)
  std::string port;    // tcp: digits, or "*" (an ephemeral port)
};

// The longest ipc path the kernel accepts (sun_path holds 108 bytes with the NUL).
inline constexpr size_t kMaxIpcPathBytes = 107;

// Errors say what is wrong with `text` (not which key: the caller knows that).
Result<Endpoint> parse_endpoint(const std::string& text);

// True for addresses that only this host can reach: 127.0.0.0/8, ::1 and "localhost".
// Everything else (0.0.0.0, *, ::, a public or private IP, an interface or host name)
// may be reachable from other hosts.
bool is_loopback_host(const std::string& host);

}  // namespace vela
