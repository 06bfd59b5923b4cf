#include "apps/vela/http_stream_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <vector>

namespace vela::cli {

using client::ServerEvent;
using json = nlohmann::json;

Result<std::unique_ptr<HttpStreamClient>> HttpStreamClient::create(const std::string& url, std::string api_key) {
  const std::string prefix = "http://";
  if (url.rfind(prefix, 0) != 0) return make_error("bad_url", "--http " + url + ": expected http://HOST:PORT");
  std::string rest = url.substr(prefix.size());
  rest = rest.substr(0, rest.find('/'));
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos) return make_error("bad_url", "--http " + url + ": no port");
  std::unique_ptr<HttpStreamClient> c(new HttpStreamClient());
  c->host_ = rest.substr(0, colon);
  if (c->host_ == "localhost") c->host_ = "127.0.0.1";
  c->port_ = std::atoi(rest.c_str() + colon + 1);
  in_addr probe{};
  if (::inet_pton(AF_INET, c->host_.c_str(), &probe) != 1 || c->port_ <= 0)
    return make_error("bad_url", "--http " + url + ": expected an IPv4 address (or localhost) and a port");
  c->api_key_ = std::move(api_key);
  return c;
}

HttpStreamClient::~HttpStreamClient() {
  for (auto& [fd, s] : streams_) ::close(fd);
}

int HttpStreamClient::open_connection() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port_));
  ::inet_pton(AF_INET, host_.c_str(), &a.sin_addr);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {  // loopback: immediate
    ::close(fd);
    return -1;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

bool HttpStreamClient::healthy(std::chrono::milliseconds timeout) {
  int fd = open_connection();
  if (fd < 0) return false;
  const std::string req = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  (void)!::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string in;
  pollfd p{fd, POLLIN, 0};
  char buf[1024];
  while (in.size() < 12 && ::poll(&p, 1, static_cast<int>(timeout.count())) > 0) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return in.rfind("HTTP/1.1 200", 0) == 0;
}

Status HttpStreamClient::submit(const client::GenerateRequest& g) {
  json body = {{"prompt", g.prompt_token_ids ? json(*g.prompt_token_ids) : json(g.prompt.value_or(""))},
               {"max_tokens", g.params.max_tokens},
               {"temperature", g.params.temperature},
               {"ignore_eos", g.params.ignore_eos},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  const std::string text = body.dump();
  Stream s;
  s.fd = open_connection();
  if (s.fd < 0) return make_error("connect_failed", "cannot connect to " + host_ + ":" + std::to_string(port_));
  s.request_id = g.request_id;
  s.out = "POST /v1/completions HTTP/1.1\r\nHost: " + host_ + "\r\nContent-Type: application/json\r\nContent-Length: " +
          std::to_string(text.size()) + "\r\n" + (api_key_.empty() ? "" : "Authorization: Bearer " + api_key_ + "\r\n") +
          "Connection: close\r\n\r\n" + text;
  ssize_t n = ::send(s.fd, s.out.data(), s.out.size(), MSG_NOSIGNAL);
  if (n > 0) s.out.erase(0, static_cast<size_t>(n));
  streams_.emplace(s.fd, std::move(s));
  return ok_status();
}

Status HttpStreamClient::abort(const std::string& request_id) {
  for (auto it = streams_.begin(); it != streams_.end(); ++it)
    if (it->second.request_id == request_id) {
      ::close(it->first);
      streams_.erase(it);
      break;
    }
  return ok_status();
}

std::optional<ServerEvent> HttpStreamClient::next_event(std::chrono::milliseconds wait) {
  if (ready_.empty() && !streams_.empty()) {
    std::vector<pollfd> fds;
    for (auto& [fd, s] : streams_) fds.push_back({fd, static_cast<short>(POLLIN | (s.out.empty() ? 0 : POLLOUT)), 0});
    if (::poll(fds.data(), fds.size(), static_cast<int>(wait.count())) > 0) {
      for (const auto& p : fds) {
        if (!p.revents) continue;
        auto it = streams_.find(p.fd);
        if (it == streams_.end()) continue;
        Stream& s = it->second;
        if ((p.revents & POLLOUT) && !s.out.empty()) {
          ssize_t n = ::send(s.fd, s.out.data(), s.out.size(), MSG_NOSIGNAL);
          if (n > 0) s.out.erase(0, static_cast<size_t>(n));
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) on_readable(s);
      }
    }
  }
  if (ready_.empty()) return std::nullopt;
  ServerEvent ev = std::move(ready_.front());
  ready_.pop_front();
  return ev;
}

void HttpStreamClient::on_readable(Stream& s) {
  char buf[65536];
  bool closed = false;
  while (true) {
    ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
    if (n > 0) {
      s.in.append(buf, static_cast<size_t>(n));
      continue;
    }
    closed = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
    break;
  }
  const bool more = parse(s);
  if (more && !closed) return;
  if (more) {  // closed before the end of its stream
    ServerEvent ev;
    ev.kind = ServerEvent::Kind::kError;
    ev.request_id = s.request_id;
    ev.code = "closed";
    ev.message = "the server closed the connection mid-stream (HTTP " + std::to_string(s.status) + ")";
    ready_.push_back(std::move(ev));
  }
  const int fd = s.fd;
  ::close(fd);
  streams_.erase(fd);
}

bool HttpStreamClient::parse(Stream& s) {
  if (!s.headers_done) {
    const size_t end = s.in.find("\r\n\r\n");
    if (end == std::string::npos) return true;
    s.status = s.in.rfind("HTTP/1.1 ", 0) == 0 ? std::atoi(s.in.c_str() + 9) : 0;
    s.chunked = s.in.substr(0, end).find("Transfer-Encoding: chunked") != std::string::npos;
    s.headers_done = true;
    s.in.erase(0, end + 4);
  }
  if (s.status != 200) {  // an error object; the server closes after it (Connection: close)
    const size_t brace = s.in.find('{');
    auto j = brace == std::string::npos ? json() : json::parse(s.in.substr(brace), nullptr, false);
    if (j.is_discarded() || !j.contains("error")) return true;  // not all of it yet
    ServerEvent ev;
    ev.kind = ServerEvent::Kind::kError;
    ev.request_id = s.request_id;
    ev.code = "http_" + std::to_string(s.status);
    ev.field = j["error"].value("param", json()).is_string() ? j["error"]["param"].get<std::string>() : "";
    ev.message = j["error"].value("message", "");
    ready_.push_back(std::move(ev));
    return false;
  }
  // De-chunk what is complete.
  while (s.chunked) {
    const size_t eol = s.in.find("\r\n");
    if (eol == std::string::npos) break;
    const size_t size = std::stoul(s.in.substr(0, eol), nullptr, 16);
    if (s.in.size() < eol + 2 + size + 2) break;
    s.body.append(s.in, eol + 2, size);
    s.in.erase(0, eol + 2 + size + 2);
    if (size == 0) break;
  }
  if (!s.chunked) {
    s.body += s.in;
    s.in.clear();
  }
  // Events.
  for (size_t end; (end = s.body.find("\n\n")) != std::string::npos;) {
    const std::string event = s.body.substr(0, end);
    s.body.erase(0, end + 2);
    if (event.rfind("data: ", 0) != 0) continue;
    const std::string data = event.substr(6);
    ServerEvent ev;
    ev.request_id = s.request_id;
    if (data == "[DONE]") {
      ev.kind = ServerEvent::Kind::kFinal;
      ev.finish_reason = s.finish_reason;
      ev.num_output_tokens = s.completion_tokens;
      const int32_t rest = std::max(0, s.completion_tokens - s.tokens_seen);
      ev.token_ids.assign(static_cast<size_t>(rest), 0);
      ready_.push_back(std::move(ev));
      return false;
    }
    auto j = json::parse(data, nullptr, false);
    if (j.is_discarded()) continue;
    if (j.contains("error")) {
      ev.kind = ServerEvent::Kind::kFinal;
      ev.finish_reason = "error";
      ev.message = j["error"].value("message", "");
      ready_.push_back(std::move(ev));
      return false;
    }
    if (j.contains("usage") && j["usage"].is_object()) s.completion_tokens = j["usage"].value("completion_tokens", 0);
    if (!j.contains("choices") || j["choices"].empty()) continue;
    const auto& choice = j["choices"][0];
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
      s.finish_reason = choice["finish_reason"].get<std::string>();
      continue;  // its token (if any) is counted from the usage at [DONE]
    }
    ev.kind = ServerEvent::Kind::kDelta;
    ev.token_ids.assign(1, 0);  // one token per chunk (one per step)
    ev.text = choice.value("text", "");
    ++s.tokens_seen;
    ready_.push_back(std::move(ev));
  }
  return true;
}

}  // namespace vela::cli
