// The Beast/Asio side of HttpServer: one io_context, one thread; a Session per
// connection reads a request, answers it, and reads the next (keep-alive). A
// generation request is an Exchange: its choices go to the FrontendActor, its events
// come back through deliver() (posted onto the io thread) and are written as they
// come. While an exchange runs the session keeps one read outstanding: a client's
// close shows up there (or as a failed write) and aborts the request.
#include "http/http_server.h"

#include <sys/resource.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <unordered_map>

#include "common/clock.h"
#include "common/logging.h"
#include "http/openai_api.h"
#include "metrics/serve_metrics.h"

namespace vela::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class Session;

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpServerCallbacks callbacks;
  std::shared_ptr<const Tokenizer> tokenizer;
  metrics::ServeMetrics* metrics = nullptr;
  std::thread thread;
  std::string host;
  int32_t port = 0;
  int32_t num_connections = 0;      // io thread only
  uint64_t next_exchange = 1;       // io thread only
  std::unordered_map<std::string, std::weak_ptr<Session>> exchanges;  // identity -> session (io thread)
  std::atomic<int32_t> num_exchanges{0};
  int64_t started_s = 0;
  // Last, so destroyed first: destroying the io_context destroys the sessions its
  // pending handlers hold, and a session's destructor still uses the members above.
  net::io_context ioc{1};
  tcp::acceptor acceptor{ioc};

  void accept();
  void count(const std::string& route, int status) {
    if (metrics) metrics->http_response(route, status);
  }
};

namespace {

constexpr size_t kWatchBytes = 4096;

std::string status_line(int status) {
  auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason.data(), reason.size()) + "\r\n";
}

}  // namespace

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl& server)
      : stream_(std::move(socket)), server_(server), bucket_(server.options.max_requests_per_s) {
    server_.num_connections++;
    last_refill_ns_ = now_ns();
  }
  ~Session() {
    server_.num_connections--;
    end_exchange(/*gone=*/true);
  }

  void start() { read_request(); }

  // An event of this session's exchange (io thread).
  void on_event(const client::ServerEvent& ev) {
    if (!builder_) return;
    if (ev.kind == client::ServerEvent::Kind::kError) {
      // A refusal before the request started: the whole request fails with it.
      ApiError e = from_protocol_error(ev.code, ev.field, ev.message);
      abort_exchange();
      if (headers_sent_) {
        append(ResponseBuilder::stream_error(e) + "data: [DONE]\n\n");
        finish_stream();
      } else {
        respond_error(e);
      }
      return;
    }
    size_t choice = 0;
    try {
      choice = std::stoul(ev.request_id);
    } catch (...) {
      return;
    }
    std::string bytes = builder_->on_event(choice, ev);
    if (stream_mode_) {
      if (!headers_sent_) {
        headers_sent_ = true;
        out_ += status_line(200) +
                "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n" +
                (keep_alive_ ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
        server_.count(route_, 200);
      }
      append(bytes);
      if (builder_->done()) finish_stream();
      return;
    }
    if (!builder_->done()) return;
    auto full = builder_->full_response();
    end_exchange(false);
    if (auto* e = std::get_if<ApiError>(&full)) return respond_error(*e);
    respond(200, "application/json", std::get<std::string>(full));
  }

 private:
  static int64_t now_ns() { return SteadyClock().now_ns(); }

  void read_request() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_.options.max_header_bytes));
    parser_->body_limit(static_cast<uint64_t>(server_.options.max_body_bytes));
    stream_.expires_after(std::chrono::milliseconds(static_cast<int64_t>(server_.options.idle_timeout_s * 1000)));
    // The header first: a client that sent "Expect: 100-continue" (curl, for bodies
    // over 1 KiB) waits for our go-ahead before it sends the body. A Content-Length
    // over the limit fails here already, so such a client never sends it.
    bhttp::async_read_header(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->on_read(ec);
      auto expect = self->parser_->get().find(bhttp::field::expect);
      if (expect != self->parser_->get().end() && beast::iequals(expect->value(), "100-continue") &&
          !self->parser_->is_done()) {
        static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        net::async_write(self->stream_, net::buffer(kContinue), [self](beast::error_code ec2, size_t) {
          if (ec2) return self->close();
          self->read_body();
        });
        return;
      }
      self->read_body();
    });
  }

  void read_body() {
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) {
      return respond_error(ApiError{413, "invalid_request_error",
                                    "the request body is larger than http.max_body_bytes (" +
                                        std::to_string(server_.options.max_body_bytes) + " bytes)",
                                    "", "too_large"},
                           /*close=*/true);
    }
    if (ec == bhttp::error::header_limit) {
      return respond_error(ApiError{431, "invalid_request_error",
                                    "the request headers are larger than http.max_header_bytes (" +
                                        std::to_string(server_.options.max_header_bytes) + " bytes)",
                                    "", "too_large"},
                           true);
    }
    if (ec) return close();  // end of stream, timeout, reset, or a malformed request
    handle(parser_->release());
  }

  bool take_token() {
    const int64_t now = now_ns();
    const double rate = server_.options.max_requests_per_s;
    bucket_ = std::min(rate, bucket_ + rate * static_cast<double>(now - last_refill_ns_) * 1e-9);
    last_refill_ns_ = now;
    if (bucket_ < 1.0) return false;
    bucket_ -= 1.0;
    return true;
  }

  bool authorized(const bhttp::request<bhttp::string_body>& req) const {
    const std::string& key = server_.options.api_key;
    if (key.empty()) return true;
    auto it = req.find(bhttp::field::authorization);
    if (it == req.end()) return false;
    std::string_view v(it->value().data(), it->value().size());
    constexpr std::string_view kBearer = "Bearer ";
    if (v.substr(0, kBearer.size()) != kBearer) return false;
    return keys_equal(v.substr(kBearer.size()), key);
  }

  void handle(bhttp::request<bhttp::string_body> req) {
    keep_alive_ = req.keep_alive();
    const std::string target(req.target().data(), req.target().size());
    const std::string path = target.substr(0, target.find('?'));
    route_ = path;
    const bool get = req.method() == bhttp::verb::get || req.method() == bhttp::verb::head;
    const bool post = req.method() == bhttp::verb::post;
    auto& o = server_.options;
    if (!take_token())
      return respond_error(ApiError{429, "rate_limit_error",
                                    "more than http.max_requests_per_s (" + std::to_string(o.max_requests_per_s) +
                                        ") requests per second on this connection",
                                    "", "rate_limited"});
    const bool api = path.rfind("/v1/", 0) == 0 || path == "/tokenize" || path == "/detokenize";
    if (api && !authorized(req))
      return respond_error(ApiError{401, "invalid_request_error",
                                    "missing or wrong API key: send 'Authorization: Bearer KEY'", "", "invalid_api_key"});
    if (path == "/health" && get) {
      const bool ok = server_.metrics && server_.metrics->healthy();
      return respond(ok ? 200 : 503, "application/json", ok ? "{}" : "{\"status\":\"unhealthy\"}");
    }
    if (path == "/metrics" && get)
      return respond(200, "text/plain; version=0.0.4; charset=utf-8",
                     server_.metrics ? server_.metrics->render_prometheus() : std::string());
    if (path == "/" && get) return respond(200, "text/html; charset=utf-8", std::string(chat_page_html()));
    if (path == "/v1/models" && get)
      return respond(200, "application/json", models_body(o.served_model_name, o.max_model_len, server_.started_s));
    if (path == "/tokenize" && post) return respond_result(tokenize(req.body(), server_.tokenizer.get(), o.served_model_name, o.max_model_len));
    if (path == "/detokenize" && post) return respond_result(detokenize(req.body(), server_.tokenizer.get(), o.served_model_name));
    if ((path == "/v1/completions" || path == "/v1/chat/completions") && post)
      return start_exchange(path == "/v1/chat/completions" ? Endpoint::kChat : Endpoint::kCompletions, req.body());
    const bool known = path == "/health" || path == "/metrics" || path == "/" || path == "/v1/models" ||
                       path == "/tokenize" || path == "/detokenize" || path == "/v1/completions" ||
                       path == "/v1/chat/completions";
    route_ = known ? path : "other";
    if (known) return respond_error(ApiError{405, "invalid_request_error", "method not allowed on " + path, "", "method_not_allowed"});
    return respond_error(ApiError{404, "NotFoundError", "no such endpoint: " + path, "", "not_found"});
  }

  void start_exchange(Endpoint endpoint, const std::string& body) {
    const int64_t recv_ns = wall_time_ns();
    auto parsed = parse_request(endpoint, body, server_.options.served_model_name);
    if (auto* e = std::get_if<ApiError>(&parsed)) return respond_error(*e);
    auto& r = std::get<ParsedRequest>(parsed);
    const std::string number = std::to_string(server_.next_exchange++);
    identity_ = std::string(kHttpIdentityPrefix) + number;
    const std::string id = (endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-") + std::to_string(server_.started_s) +
                           "-" + number;
    builder_ = std::make_unique<ResponseBuilder>(r, server_.tokenizer.get(), id, wall_time_ns() / 1000000000,
                                                 server_.options.served_model_name);
    stream_mode_ = r.stream;
    headers_sent_ = false;
    server_.exchanges[identity_] = weak_from_this();
    server_.num_exchanges++;
    // While it runs, a read watches for the client going away (and holds any bytes
    // of its next request for the parser).
    stream_.expires_never();
    watch();
    server_.callbacks.on_generate(identity_, std::move(r.choices), r.max_tokens_auto, recv_ns);
  }

  void watch() {
    if (watching_ || buffer_.size() > kWatchBytes) return;
    watching_ = true;
    stream_.async_read_some(buffer_.prepare(kWatchBytes), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->watching_ = false;
      if (ec) {
        self->abort_exchange();
        return self->close();
      }
      self->buffer_.commit(n);
      if (self->builder_) self->watch();
      else if (self->read_after_watch_) {
        self->read_after_watch_ = false;
        self->read_request();
      }
    });
  }

  // The request's choices are aborted (client gone, refused, or a failed write).
  void abort_exchange() {
    if (!builder_) return;
    const std::string identity = identity_;
    end_exchange(false);
    server_.callbacks.on_gone(identity);
  }

  void end_exchange(bool gone) {
    if (identity_.empty()) return;
    server_.exchanges.erase(identity_);
    server_.num_exchanges--;
    if (gone && builder_ && !builder_->done()) server_.callbacks.on_gone(identity_);
    builder_.reset();
    identity_.clear();
  }

  // Streaming body: each server-sent event ("...\n\n") becomes one HTTP chunk.
  void append(const std::string& bytes) {
    for (size_t begin = 0; begin < bytes.size();) {
      size_t end = bytes.find("\n\n", begin);
      end = end == std::string::npos ? bytes.size() : end + 2;
      char size[20];
      snprintf(size, sizeof size, "%zx\r\n", end - begin);
      out_ += size;
      out_.append(bytes, begin, end - begin);
      out_ += "\r\n";
      begin = end;
    }
    flush();
  }

  void finish_stream() {
    out_ += "0\r\n\r\n";
    end_exchange(false);
    // The watch read may stay outstanding into the next request's wait: the idle
    // timeout covers it again from here.
    stream_.expires_after(std::chrono::milliseconds(static_cast<int64_t>(server_.options.idle_timeout_s * 1000)));
    after_response_ = keep_alive_ ? After::kNextRequest : After::kClose;
    flush();
  }

  void flush() {
    if (writing_ || out_.empty()) return;
    writing_ = true;
    inflight_.swap(out_);
    out_.clear();
    net::async_write(stream_, net::buffer(inflight_), [self = shared_from_this()](beast::error_code ec, size_t) {
      self->writing_ = false;
      self->inflight_.clear();
      if (ec) {
        self->abort_exchange();
        return self->close();
      }
      if (!self->out_.empty()) return self->flush();
      self->after_write();
    });
  }

  void after_write() {
    const After next = after_response_;
    after_response_ = After::kNothing;
    if (next == After::kClose) return close();
    if (next == After::kLinger) return linger();
    if (next == After::kNextRequest) {
      if (watching_) read_after_watch_ = true;  // the watch's bytes go to the parser first
      else read_request();
    }
  }

  void respond(int status, const std::string& content_type, const std::string& body, bool close_after = false) {
    server_.count(route_, status);
    std::string& o = out_;
    o += status_line(status);
    o += "Content-Type: " + content_type + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    if (!close_after && keep_alive_) o += "Connection: keep-alive\r\n";
    else o += "Connection: close\r\n";
    if (status == 401) o += "WWW-Authenticate: Bearer\r\n";
    o += "\r\n";
    o += body;
    after_response_ = close_after ? After::kLinger : (keep_alive_ ? After::kNextRequest : After::kClose);
    stream_.expires_after(std::chrono::milliseconds(static_cast<int64_t>(server_.options.idle_timeout_s * 1000)));
    flush();
  }

  void respond_error(const ApiError& e, bool close_after = false) {
    respond(e.status, "application/json", error_body(e), close_after);
  }

  void respond_result(const std::variant<std::string, ApiError>& r) {
    if (auto* e = std::get_if<ApiError>(&r)) return respond_error(*e);
    respond(200, "application/json", std::get<std::string>(r));
  }

  // After refusing an oversized request: stop sending, read (and drop) what the
  // client is still sending for a moment so it sees the response, not a reset.
  void linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(2));
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(64 << 10), [self = shared_from_this()](beast::error_code ec, size_t) {
      self->buffer_.clear();
      if (ec) return self->close();
      self->linger_more();
    });
  }
  void linger_more() {
    stream_.async_read_some(buffer_.prepare(64 << 10), [self = shared_from_this()](beast::error_code ec, size_t) {
      self->buffer_.clear();
      if (ec) return self->close();
      self->linger_more();
    });
  }

  void close() {
    end_exchange(true);
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  enum class After { kNothing, kNextRequest, kClose, kLinger };

  beast::tcp_stream stream_;
  HttpServer::Impl& server_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  double bucket_;                  // rate limit: requests available now
  int64_t last_refill_ns_ = 0;
  bool keep_alive_ = true;
  std::string route_;
  // The exchange in progress (a generation request).
  std::string identity_;
  std::unique_ptr<ResponseBuilder> builder_;
  bool stream_mode_ = false;
  bool headers_sent_ = false;
  // Output: out_ collects, inflight_ is being written.
  std::string out_, inflight_;
  bool writing_ = false;
  bool watching_ = false;
  bool read_after_watch_ = false;
  After after_response_ = After::kNothing;
};

void HttpServer::Impl::accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (!ec) {
      if (num_connections >= options.max_connections) {
        // Over the limit: a short 503 and close, without a session.
        count("connection_limit", 503);
        auto msg = std::make_shared<std::string>(
            status_line(503) + "Content-Type: application/json\r\nConnection: close\r\nContent-Length: ");
        const std::string body = error_body(ApiError{503, "service_unavailable",
                                                     "too many open connections (http.max_connections = " +
                                                         std::to_string(options.max_connections) + ")",
                                                     "", "too_many_connections"});
        *msg += std::to_string(body.size()) + "\r\n\r\n" + body;
        auto sock = std::make_shared<tcp::socket>(std::move(socket));
        net::async_write(*sock, net::buffer(*msg), [sock, msg](beast::error_code, size_t) {
          beast::error_code ignored;
          sock->shutdown(tcp::socket::shutdown_both, ignored);
        });
      } else {
        std::make_shared<Session>(std::move(socket), *this)->start();
      }
    }
    accept();
  });
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<HttpServer>> HttpServer::start(HttpServerOptions options, HttpServerCallbacks callbacks,
                                                      std::shared_ptr<const Tokenizer> tokenizer,
                                                      metrics::ServeMetrics* metrics) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->callbacks = std::move(callbacks);
  impl->tokenizer = std::move(tokenizer);
  impl->metrics = metrics;
  impl->started_s = wall_time_ns() / 1000000000;
  // Each connection is a descriptor: lift the soft limit to the hard one so
  // http.max_connections, not a default of 1024, is what bounds them.
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  const auto& o = impl->options;
  beast::error_code ec;
  auto address = net::ip::make_address(o.host, ec);
  if (ec) return make_error("bind_failed", "http.host '" + o.host + "' is not an IP address: " + ec.message());
  tcp::endpoint endpoint(address, static_cast<unsigned short>(o.port));
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return make_error("bind_failed", "http server cannot listen on " + o.host + ":" + std::to_string(o.port) + ": " +
                                         ec.message());
  impl->host = o.host;
  impl->port = impl->acceptor.local_endpoint().port();
  impl->accept();
  Impl* p = impl.get();
  impl->thread = std::thread([p] { p->ioc.run(); });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::~HttpServer() {
  // No new connections; responses still being written get up to 2 s.
  net::post(impl_->ioc, [p = impl_.get()] {
    beast::error_code ignored;
    p->acceptor.close(ignored);
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (impl_->num_exchanges.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the last writes
  impl_->ioc.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

void HttpServer::deliver(const std::string& identity, client::ServerEvent event) {
  net::post(impl_->ioc, [p = impl_.get(), identity, ev = std::move(event)] {
    auto it = p->exchanges.find(identity);
    if (it == p->exchanges.end()) return;  // the request ended (refused, or its client left)
    if (auto session = it->second.lock()) session->on_event(ev);
  });
}

int32_t HttpServer::port() const { return impl_->port; }
const std::string& HttpServer::host() const { return impl_->host; }

}  // namespace vela::http
