#pragma once
// HttpStreamClient: the HTTP side of `vela bench serve --http URL`. It offers what
// the bench's driver uses of client::Client (submit, next_event, abort) over the
// OpenAI API: each request is a POST /v1/completions with "stream": true on its own
// connection, all of them polled by the one thread that calls next_event. Each SSE
// chunk of a choice becomes a delta of one token (the engine emits one token per
// request per step); the last, from the usage chunk, carries whatever is left, so
// token counts and arrival times line up with the ZeroMQ client's.
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "client/protocol.h"
#include "common/result.h"

namespace vela::cli {

class HttpStreamClient {
 public:
  // url: http://HOST:PORT (IPv4 address or localhost); api_key may be empty.
  static Result<std::unique_ptr<HttpStreamClient>> create(const std::string& url, std::string api_key);
  ~HttpStreamClient();
  bool healthy(std::chrono::milliseconds timeout);  // GET /health answered 200
  Status submit(const client::GenerateRequest& request);
  std::optional<client::ServerEvent> next_event(std::chrono::milliseconds wait);
  Status abort(const std::string& request_id);  // closes its connection: the server aborts it

 private:
  struct Stream {
    int fd = -1;
    std::string request_id;
    std::string out;               // request bytes not yet sent
    std::string in;                // received, not yet parsed
    bool headers_done = false;
    int status = 0;
    bool chunked = false;
    std::string body;              // de-chunked, not yet split into events
    int32_t tokens_seen = 0;
    std::string finish_reason;
    int32_t completion_tokens = -1;
  };
  HttpStreamClient() = default;
  int open_connection();
  void on_readable(Stream& s);
  bool parse(Stream& s);           // false: the stream is over (an event was queued)
  std::string host_;
  int port_ = 0;
  std::string api_key_;
  std::map<int, Stream> streams_;  // by fd
  std::deque<client::ServerEvent> ready_;
};

}  // namespace vela::cli
