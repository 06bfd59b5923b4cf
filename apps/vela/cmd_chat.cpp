// `vela chat --server ENDPOINT`: an interactive chat with a running `vela serve`.
// Each line read from stdin is a user turn; the whole conversation goes to the
// server as `messages` (the server renders the model's chat template) and the reply
// streams back. Ctrl-C during a reply aborts that request on the engine and returns
// to the prompt (the unanswered turn is dropped); Ctrl-C at the prompt clears it;
// Ctrl-D (EOF) exits with status 0.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <iostream>
#include <memory>

#include "apps/vela/bench_common.h"
#include "apps/vela/commands.h"
#include "apps/vela/remote.h"
#include "client/client.h"

namespace vela::cli {
namespace {

struct ChatOpts {
  RemoteOpts remote;
  std::string system;
  SamplingParams params;
  int64_t seed = -1;
  double timeout_s = 600;   // one reply at most this long
};

std::atomic<bool> g_interrupted{false};
void on_sigint(int) { g_interrupted = true; }

// Reads stdin byte-wise with read(2) so that Ctrl-C (EINTR) is seen at once.
class LineReader {
 public:
  enum class Got { kLine, kEof, kInterrupted };
  Got next(std::string& line) {
    line.clear();
    while (true) {
      size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return Got::kLine;
      }
      char chunk[4096];
      ssize_t n = ::read(STDIN_FILENO, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) {
        if (g_interrupted.exchange(false)) {
          buffer_.clear();
          return Got::kInterrupted;
        }
        continue;
      }
      if (n <= 0) {  // EOF (or a read error): a last line without '\n' still counts
        if (buffer_.empty()) return Got::kEof;
        line.swap(buffer_);
        return Got::kLine;
      }
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  std::string buffer_;
};

enum class Reply { kDone, kAborted, kFailed };

// Sends the conversation, streams the reply to stdout; on kDone `text` is the whole reply.
Reply stream_reply(client::Client& c, const ChatOpts& o, const std::vector<client::ChatTurn>& turns,
                   const std::string& request_id, std::string& text) {
  client::GenerateRequest r;
  r.request_id = request_id;
  r.messages = turns;
  r.params = o.params;
  if (o.seed >= 0) r.params.seed = static_cast<uint64_t>(o.seed);
  if (auto sent = c.submit(r); !sent) {
    std::cerr << "vela: could not send the request: " << sent.error().message << "\n";
    return Reply::kFailed;
  }
  text.clear();
  bool abort_sent = false;
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(o.timeout_s));
  using K = client::ServerEvent::Kind;
  while (true) {
    if (g_interrupted.exchange(false) && !abort_sent) {
      abort_sent = true;
      (void)c.abort(request_id);  // the engine answers with a final (finish_reason "abort")
      deadline = std::min(deadline, std::chrono::steady_clock::now() + std::chrono::seconds(10));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      if (!abort_sent) (void)c.abort(request_id);
      std::cerr << "\nvela: no reply within " << (abort_sent ? 10 : o.timeout_s) << " s\n";
      return Reply::kFailed;
    }
    auto ev = c.next_event(std::chrono::milliseconds(100));
    if (!ev || ev->request_id != request_id) continue;
    if (ev->kind == K::kError) {
      std::cerr << "vela: error [" << ev->code << "]" << (ev->field.empty() ? "" : " field " + ev->field) << ": "
                << ev->message << "\n";
      return Reply::kFailed;
    }
    std::cout << ev->text << std::flush;
    text += ev->text;
    if (ev->kind != K::kFinal) continue;
    std::cout << "\n";
    if (ev->finish_reason == "abort") {
      std::cout << "[aborted]\n" << std::flush;
      return Reply::kAborted;
    }
    if (ev->finish_reason == "error") {
      std::cerr << "vela: the request failed: " << ev->message << "\n";
      return Reply::kFailed;
    }
    if (ev->finish_reason == "length") std::cout << "[max tokens reached]\n";
    std::cout << std::flush;
    return Reply::kDone;
  }
}

int run_chat(const ChatOpts& o) {
  auto connected = connect_remote(o.remote);
  client::Client& c = *connected;
  if (!c.ping(std::chrono::seconds(10))) fail("no `vela serve` answers at " + o.remote.server);

  // No SA_RESTART: a Ctrl-C must interrupt the blocking read of the next line.
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);

  const bool interactive = ::isatty(STDIN_FILENO);
  std::vector<client::ChatTurn> turns;
  if (!o.system.empty()) turns.push_back({"system", o.system});
  LineReader reader;
  std::string line, reply;
  for (int turn = 0;; ++turn) {
    if (interactive) std::cout << ">>> " << std::flush;
    auto got = reader.next(line);
    if (got == LineReader::Got::kEof) break;
    if (got == LineReader::Got::kInterrupted) {
      std::cout << "\n";
      continue;
    }
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    turns.push_back({"user", line});
    switch (stream_reply(c, o, turns, "chat-" + std::to_string(turn), reply)) {
      case Reply::kDone:
        turns.push_back({"assistant", reply});
        break;
      case Reply::kAborted:
      case Reply::kFailed:
        turns.pop_back();  // the conversation goes on as if the turn had not been asked
        break;
    }
  }
  if (interactive) std::cout << "\n";
  return 0;
}

}  // namespace

void add_chat_command(CLI::App& app) {
  auto o = std::make_shared<ChatOpts>();
  o->params.max_tokens = 512;
  o->params.temperature = 0.7f;
  auto* cmd = app.add_subcommand("chat", "Chat with a running `vela serve`: one line per turn, Ctrl-C aborts a reply, Ctrl-D exits");
  cmd->add_option("--server", o->remote.server, "frontend endpoint of a running `vela serve` (e.g. ipc:///tmp/vela-frontend.sock)")
      ->required();
  add_remote_key_options(cmd, o->remote);
  cmd->add_option("--system", o->system, "system message that opens the conversation");
  cmd->add_option("--max-tokens", o->params.max_tokens, "reply tokens at most")->check(CLI::Range(1, 1 << 30));
  cmd->add_option("--temperature", o->params.temperature, "0 = greedy")->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--top-p", o->params.top_p)->check(CLI::Range(1e-6, 1.0));
  cmd->add_option("--seed", o->seed, "per-request seed");
  cmd->add_option("--timeout", o->timeout_s, "give up on a reply after this many seconds");
  cmd->callback([o]() {
    int code = run_chat(*o);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace vela::cli
