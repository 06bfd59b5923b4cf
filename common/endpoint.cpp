#include "common/endpoint.h"

#include <arpa/inet.h>

#include <cctype>

namespace vela {

Result<Endpoint> parse_endpoint(const std::string& text) {
  const auto sep = text.find("://");
  if (sep == std::string::npos)
    return make_error("bad_endpoint", "'" + text + "' is not an endpoint: expected ipc://PATH or tcp://HOST:PORT");
  Endpoint e;
  e.scheme = text.substr(0, sep);
  const std::string rest = text.substr(sep + 3);
  if (e.scheme == "ipc") {
    // Abstract sockets (@name) have no file and so no permissions: any local user
    // could connect. Relative paths depend on the working directory.
    if (rest.empty() || rest[0] != '/')
      return make_error("bad_endpoint", "'" + text + "': an ipc endpoint needs an absolute path (ipc:///dir/name.sock)");
    if (rest.size() > kMaxIpcPathBytes)
      return make_error("bad_endpoint", "'" + text + "': the socket path is " + std::to_string(rest.size()) +
                                            " bytes, the kernel's limit is " + std::to_string(kMaxIpcPathBytes));
    e.path = rest;
    return e;
  }
  if (e.scheme != "tcp")
    return make_error("bad_endpoint", "'" + text + "': unknown transport '" + e.scheme + "' (ipc or tcp)");
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size())
    return make_error("bad_endpoint", "'" + text + "': expected tcp://HOST:PORT (PORT a number or *)");
  e.host = rest.substr(0, colon);
  e.port = rest.substr(colon + 1);
  if (e.port != "*") {
    for (char c : e.port)
      if (!std::isdigit(static_cast<unsigned char>(c)))
        return make_error("bad_endpoint", "'" + text + "': port '" + e.port + "' is not a number or *");
    if (e.port.size() > 5 || std::stoi(e.port) < 1 || std::stoi(e.port) > 65535)
      return make_error("bad_endpoint", "'" + text + "': port " + e.port + " is out of range [1, 65535]");
  }
  return e;
}

bool is_loopback_host(const std::string& host_in) {
  std::string host = host_in;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

}  // namespace vela
