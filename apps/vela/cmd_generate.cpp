// `vela generate --server ENDPOINT ...`: send one or more requests to a running
// `vela serve` over one connection and stream the results. Ctrl-C aborts the
// requests on the engine (the server answers each with finish_reason "abort").
#include <signal.h>

#include <atomic>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include "apps/vela/commands.h"
#include "client/client.h"

namespace vela::cli {
namespace {

std::atomic<bool> g_interrupted{false};
void on_sigint(int) { g_interrupted = true; }

std::vector<int32_t> parse_ids(const std::string& csv) {
  std::vector<int32_t> ids;
  std::stringstream in(csv);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) ids.push_back(std::stoi(item));
  return ids;
}

}  // namespace

void add_generate_command(CLI::App& app) {
  struct Opts {
    std::string server, prompt, token_ids;
    int num_requests = 1;
    bool no_stream = false;
    double timeout_s = 600;
    SamplingParams params;
    int64_t seed = -1;
  };
  auto o = std::make_shared<Opts>();
  o->params.temperature = 0.0f;
  auto* cmd = app.add_subcommand("generate", "Generate from a running `vela serve` (--server ENDPOINT)");
  cmd->add_option("--server", o->server, "frontend endpoint, e.g. ipc:///tmp/vela-frontend.sock")->required();
  cmd->add_option("--prompt", o->prompt, "prompt text (the server tokenizes it)");
  cmd->add_option("--token-ids", o->token_ids, "prompt as comma-separated token ids");
  cmd->add_option("--max-tokens", o->params.max_tokens, "output tokens at most");
  cmd->add_option("--temperature", o->params.temperature, "0 = greedy (default)");
  cmd->add_option("--top-p", o->params.top_p);
  cmd->add_option("--top-k", o->params.top_k);
  cmd->add_option("--seed", o->seed, "per-request seed");
  cmd->add_option("--stop", o->params.stop, "stop string (repeatable)");
  cmd->add_option("--stop-token-id", o->params.stop_token_ids, "stop token id (repeatable)");
  cmd->add_flag("--ignore-eos", o->params.ignore_eos);
  cmd->add_option("-n,--num-requests", o->num_requests, "send this many copies concurrently");
  cmd->add_flag("--no-stream", o->no_stream, "one final message per request");
  cmd->add_option("--timeout", o->timeout_s, "give up after this many seconds");
  cmd->callback([o]() {
    auto client = client::Client::connect(o->server);
    if (!client) {
      std::cerr << "vela: " << client.error().message << "\n";
      throw CLI::RuntimeError(2);
    }
    client::GenerateRequest base;
    if (!o->token_ids.empty()) base.prompt_token_ids = parse_ids(o->token_ids);
    else base.prompt = o->prompt;
    base.params = o->params;
    if (o->seed >= 0) base.params.seed = static_cast<uint64_t>(o->seed);
    base.stream = !o->no_stream;
    std::map<std::string, std::string> texts;
    for (int i = 0; i < o->num_requests; ++i) {
      auto r = base;
      r.request_id = "req-" + std::to_string(i);
      if (!(*client)->submit(r)) {
        std::cerr << "vela: could not send " << r.request_id << "\n";
        throw CLI::RuntimeError(2);
      }
      texts[r.request_id];
    }
    ::signal(SIGINT, on_sigint);
    bool aborted = false;
    int failures = 0;
    const bool echo = o->num_requests == 1;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(o->timeout_s);
    while (!texts.empty()) {
      if (g_interrupted && !aborted) {
        aborted = true;
        for (auto& [id, text] : texts) (void)(*client)->abort(id);
      }
      if (std::chrono::steady_clock::now() > deadline) {
        std::cerr << "vela: timed out with " << texts.size() << " request(s) unfinished\n";
        throw CLI::RuntimeError(1);
      }
      auto ev = (*client)->next_event(std::chrono::milliseconds(100));
      if (!ev) continue;
      using K = client::ServerEvent::Kind;
      if (ev->kind == K::kError) {
        std::cerr << "\nvela: " << ev->request_id << ": error [" << ev->code << "]"
                  << (ev->field.empty() ? "" : " field " + ev->field) << ": " << ev->message << "\n";
        texts.erase(ev->request_id);
        ++failures;
        continue;
      }
      if (!texts.count(ev->request_id)) continue;
      texts[ev->request_id] += ev->text;
      if (echo) std::cout << ev->text << std::flush;
      if (ev->kind == K::kFinal) {
        if (echo) {
          std::cout << "\n";
          std::cerr << "[" << ev->finish_reason << ", " << ev->num_prompt_tokens << " prompt + "
                    << ev->num_output_tokens << " output tokens" << (ev->message.empty() ? "" : ": " + ev->message) << "]\n";
        } else {
          std::cout << ev->request_id << " [" << ev->finish_reason << ", " << ev->num_output_tokens
                    << " tokens]: " << texts[ev->request_id] << "\n";
        }
        if (ev->finish_reason == "error") ++failures;
        texts.erase(ev->request_id);
      }
    }
    if (failures > 0) throw CLI::RuntimeError(1);
    if (aborted) throw CLI::RuntimeError(130);
  });
}

}  // namespace vela::cli
