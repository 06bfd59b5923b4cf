// `vela generate --server ENDPOINT ...`: the requests go over one connection to a
// running `vela serve` and stream back. Ctrl-C aborts them on the engine (each then
// ends with finish_reason "abort").
#include <signal.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <sstream>

#include "apps/vela/bench_common.h"
#include "apps/vela/generate.h"
#include "apps/vela/remote.h"
#include "client/client.h"

namespace vela::cli {
namespace {

std::atomic<bool> g_interrupted{false};
void on_sigint(int) { g_interrupted = true; }

std::vector<int32_t> parse_ids_or_fail(const std::string& csv) {
  std::vector<int32_t> ids;
  std::stringstream in(csv);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    size_t pos = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &pos);
    } catch (const std::exception&) {
      pos = 0;
    }
    if (pos != item.size() || v < INT32_MIN || v > INT32_MAX) fail("--prompt-ids: '" + item + "' is not a token id");
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

}  // namespace

int run_remote(const GenerateOpts& o) {
  auto client = connect_remote({o.server, o.server_key_file, o.client_key_file});
  std::vector<client::GenerateRequest> requests;
  auto base = [&] {
    client::GenerateRequest r;
    r.params = o.params;
    if (o.seed >= 0) r.params.seed = static_cast<uint64_t>(o.seed);
    r.stream = !o.no_stream;
    return r;
  };
  for (const auto& text : o.prompts) {
    auto r = base();
    // --chat: a one-turn conversation; the server renders the model's chat template.
    if (o.chat) r.messages = std::vector<client::ChatTurn>{{"user", text}};
    else r.prompt = text;
    requests.push_back(r);
  }
  if (o.chat && !o.prompt_ids.empty()) fail("--chat takes --prompt TEXT, not --prompt-ids");
  for (const auto& csv : o.prompt_ids) {
    auto r = base();
    r.prompt_token_ids = parse_ids_or_fail(csv);
    requests.push_back(r);
  }
  if (requests.empty()) fail("give --prompt TEXT or --prompt-ids 1,2,3");

  std::map<std::string, GenerateResult> live;
  std::vector<std::string> order;
  for (size_t i = 0; i < requests.size() * static_cast<size_t>(o.copies); ++i) {
    auto r = requests[i / static_cast<size_t>(o.copies)];
    r.request_id = "gen-" + std::to_string(i);
    if (auto sent = client->submit(r); !sent) fail("could not send " + r.request_id + ": " + sent.error().message);
    live[r.request_id].request_id = r.request_id;
    order.push_back(r.request_id);
  }
  ::signal(SIGINT, on_sigint);
  const bool echo = order.size() == 1 && !o.json;
  bool aborted = false;
  std::map<std::string, GenerateResult> done;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(o.timeout_s);
  while (!live.empty()) {
    if (g_interrupted && !aborted) {
      aborted = true;
      for (auto& [id, r] : live) (void)client->abort(id);
    }
    if (std::chrono::steady_clock::now() > deadline) {
      std::cerr << "vela: timed out with " << live.size() << " request(s) unfinished\n";
      return 1;
    }
    auto ev = client->next_event(std::chrono::milliseconds(100));
    if (!ev) continue;
    auto it = live.find(ev->request_id);
    if (it == live.end()) continue;
    GenerateResult& r = it->second;
    using K = client::ServerEvent::Kind;
    if (ev->kind == K::kError) {
      std::cerr << "vela: " << ev->request_id << ": error [" << ev->code << "]"
                << (ev->field.empty() ? "" : " field " + ev->field) << ": " << ev->message << "\n";
      r.finish_reason = "error";
      done[ev->request_id] = std::move(r);
      live.erase(it);
      continue;
    }
    r.token_ids.insert(r.token_ids.end(), ev->token_ids.begin(), ev->token_ids.end());
    r.text += ev->text;
    if (ev->logprobs) r.logprobs.insert(r.logprobs.end(), ev->logprobs->begin(), ev->logprobs->end());
    if (echo) std::cout << ev->text << std::flush;
    if (ev->kind == K::kFinal) {
      r.finish_reason = ev->finish_reason;
      r.prompt_token_ids = ev->prompt_token_ids;
      if (!ev->message.empty()) std::cerr << "vela: " << ev->request_id << ": " << ev->message << "\n";
      done[ev->request_id] = std::move(r);
      live.erase(it);
    }
  }
  std::vector<GenerateResult> results;
  for (const auto& id : order) results.push_back(done[id]);
  int code = print_results(o, results);
  return aborted ? 130 : code;
}

}  // namespace vela::cli
