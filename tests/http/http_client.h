#pragma once
// A minimal HTTP/1.1 client for tests: one request per connection (Connection:
// close), the raw bytes kept so framing can be checked byte for byte. Every wait
// has a deadline.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace vela::testing {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string raw_body;                        // as received (chunked framing included)
  std::string body;                            // de-chunked
  std::vector<std::string> chunks;             // the chunks, when chunked
  bool framing_ok = true;                      // chunked framing parsed exactly to its end
};

// A port nobody listens on right now.
inline int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline bool send_all(int fd, const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads until the peer closes or the deadline passes.
inline std::string read_all(int fd, std::chrono::milliseconds timeout) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

inline std::optional<HttpResponse> parse_response(const std::string& raw) {
  HttpResponse r;
  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos || raw.rfind("HTTP/1.1 ", 0) != 0) return std::nullopt;
  r.status = std::atoi(raw.c_str() + 9);
  size_t pos = raw.find("\r\n") + 2;
  while (pos < head_end) {
    size_t eol = raw.find("\r\n", pos);
    std::string line = raw.substr(pos, eol - pos);
    size_t colon = line.find(':');
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value[0] == ' ') value.erase(0, 1);
    r.headers[name] = value;
    pos = eol + 2;
  }
  r.raw_body = raw.substr(head_end + 4);
  if (r.headers["transfer-encoding"] == "chunked") {
    size_t p = 0;
    r.framing_ok = false;
    while (p < r.raw_body.size()) {
      size_t eol = r.raw_body.find("\r\n", p);
      if (eol == std::string::npos) break;
      size_t size = std::stoul(r.raw_body.substr(p, eol - p), nullptr, 16);
      if (size == 0) {
        r.framing_ok = r.raw_body.substr(eol) == "\r\n\r\n";
        break;
      }
      if (eol + 2 + size + 2 > r.raw_body.size() || r.raw_body.substr(eol + 2 + size, 2) != "\r\n") break;
      r.chunks.push_back(r.raw_body.substr(eol + 2, size));
      r.body += r.chunks.back();
      p = eol + 2 + size + 2;
    }
  } else {
    r.body = r.raw_body;
  }
  return r;
}

// One request, one connection.
inline std::optional<HttpResponse> http_call(int port, const std::string& method, const std::string& path,
                                             const std::string& body = "",
                                             const std::vector<std::string>& headers = {},
                                             std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  int fd = connect_to(port);
  if (fd < 0) return std::nullopt;
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& h : headers) req += h + "\r\n";
  if (!body.empty() || method == "POST")
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  send_all(fd, req);
  std::string raw = read_all(fd, timeout);
  ::close(fd);
  return parse_response(raw);
}

}  // namespace vela::testing
