// `vela serve` with the real model runner on qwen3-tiny, driven through the C++
// client: 64 concurrent streams of the golden prompts over one connection give HF's
// greedy tokens (up to the first near-tie) and exactly the in-process engine's
// tokens, with 1 worker, TP=2 (Gloo) and DP=2. Also: text prompts are tokenized by
// the server, stop strings cut the streamed text, chat `messages` render to the ids
// the tokenizer's chat template gives locally.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "llm/engine_setup.h"
#include "llm/llm_engine.h"
#include <nlohmann/json.hpp>

#include "tests/model/golden.h"
#include "tests/runtime/piped_process.h"
#include "tests/runtime/serve_fixture.h"
#include "tokenizer/tokenizer.h"

using namespace vela;
using namespace vela::testing;
using namespace std::chrono_literals;
using client::ServerEvent;

namespace {

constexpr int kMaxTokens = 24;
constexpr int kNumRequests = 64;

std::string qwen3_dir() { return model_dir("qwen3-tiny"); }

const Tokenizer& tokenizer() {
  static auto tok = Tokenizer::from_file(qwen3_dir() + "/tokenizer.json");
  REQUIRE(tok.ok());
  return **tok;
}

std::string model_yaml(const std::string& parallel_yaml = "") {
  return "model:\n  path: " + qwen3_dir() + "\ncache:\n  cpu_kv_cache_gib: 0.05\n" + parallel_yaml;
}

// Greedy tokens of the in-process engine (one worker, no actors, no sockets) for
// every golden prompt, all in flight at once: computed once per test binary.
const std::vector<std::vector<int32_t>>& in_process_tokens() {
  static const std::vector<std::vector<int32_t>> tokens = [] {
    Config config;
    config.model.path = qwen3_dir();
    config.cache.cpu_kv_cache_gib = 0.05;
    auto resolved = resolve_model_paths(config);
    REQUIRE(resolved.ok());
    auto engine = LLMEngine::create(*resolved);
    if (!engine) FAIL(engine.error().message);
    auto cases = load_golden("qwen3-tiny");
    for (size_t i = 0; i < cases.size(); ++i) {
      EngineCoreRequest r;
      r.request_id = std::to_string(i);
      r.prompt_token_ids = cases[i].prompt;
      r.sampling_params.temperature = 0;
      r.sampling_params.ignore_eos = true;
      r.sampling_params.max_tokens = kMaxTokens;
      REQUIRE_FALSE((*engine)->add_request(r));
    }
    std::vector<std::vector<int32_t>> out(cases.size());
    for (int steps = 0; (*engine)->has_unfinished_requests(); ++steps) {
      REQUIRE(steps < 1000);
      auto outs = (*engine)->step();
      if (!outs) FAIL(outs.error().message);
      for (const auto& o : (*outs)->outputs) {
        auto& t = out[std::stoul(o.request_id)];
        t.insert(t.end(), o.new_token_ids.begin(), o.new_token_ids.end());
      }
    }
    return out;
  }();
  return tokens;
}

struct Stream {
  std::vector<int32_t> tokens;
  std::string text;              // deltas' and final's text, concatenated
  std::string finish_reason;     // "error:<field>" for an error event
  std::string stop_reason;
  std::string message;
  std::vector<int32_t> prompt_token_ids;
  std::vector<TokenLogprobs> logprobs;  // deltas' and final's, concatenated
  int events_with_logprobs = 0;
  int events_with_mismatched_logprobs = 0;  // logprobs not one per token_ids entry
  int deltas = 0;
  bool done = false;
};

// Reads events until every id has its final (or error) or the deadline passes.
std::map<std::string, Stream> collect(client::Client& c, const std::set<std::string>& ids,
                                      std::chrono::milliseconds timeout) {
  std::map<std::string, Stream> out;
  size_t done = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (done < ids.size() && std::chrono::steady_clock::now() < deadline) {
    auto ev = c.next_event(100ms);
    if (!ev || !ids.count(ev->request_id)) continue;
    auto& s = out[ev->request_id];
    if (s.done) continue;
    s.tokens.insert(s.tokens.end(), ev->token_ids.begin(), ev->token_ids.end());
    s.text += ev->text;
    if (ev->logprobs) {
      s.events_with_logprobs++;
      if (ev->logprobs->size() != ev->token_ids.size()) s.events_with_mismatched_logprobs++;
      s.logprobs.insert(s.logprobs.end(), ev->logprobs->begin(), ev->logprobs->end());
    }
    if (ev->kind == ServerEvent::Kind::kDelta) s.deltas++;
    if (ev->kind == ServerEvent::Kind::kFinal || ev->kind == ServerEvent::Kind::kError) {
      s.finish_reason = ev->kind == ServerEvent::Kind::kError ? "error:" + ev->field : ev->finish_reason;
      s.stop_reason = ev->stop_reason;
      s.message = ev->message;
      s.prompt_token_ids = ev->prompt_token_ids;
      s.done = true;
      ++done;
    }
  }
  return out;
}

client::GenerateRequest greedy(const std::string& id, int max_tokens = kMaxTokens) {
  client::GenerateRequest r;
  r.request_id = id;
  r.params.temperature = 0;
  r.params.ignore_eos = true;
  r.params.max_tokens = max_tokens;
  return r;
}

// 64 streams of the 9 golden prompts (repeated) over one connection.
void check_golden_streams(ServeProcess& server) {
  const auto cases = load_golden("qwen3-tiny");
  const auto& reference = in_process_tokens();
  auto c = server.connect();
  REQUIRE(c);
  std::set<std::string> ids;
  for (int i = 0; i < kNumRequests; ++i) {
    auto r = greedy("g" + std::to_string(i));
    r.prompt_token_ids = cases[i % cases.size()].prompt;
    REQUIRE(c->submit(r).ok());
    ids.insert(r.request_id);
  }
  auto got = collect(*c, ids, 60s);
  REQUIRE(got.size() == ids.size());
  for (int i = 0; i < kNumRequests; ++i) {
    const auto& s = got["g" + std::to_string(i)];
    const auto& golden = cases[i % cases.size()];
    INFO("request g" << i << " (golden case " << i % cases.size() << "): " << s.finish_reason << " " << s.message);
    REQUIRE(s.done);
    CHECK(s.finish_reason == "length");
    CHECK(s.deltas >= 1);
    CHECK(s.prompt_token_ids == golden.prompt);
    REQUIRE(s.tokens.size() == static_cast<size_t>(kMaxTokens));
    const auto n = static_cast<ptrdiff_t>(golden.num_reliable_tokens());
    CHECK(std::vector<int32_t>(s.tokens.begin(), s.tokens.begin() + n) ==
          std::vector<int32_t>(golden.generated.begin(), golden.generated.begin() + n));
    CHECK(s.tokens == reference[i % cases.size()]);
  }
}

// One token's logprobs against HF's (fp32 CPU matches within ~1e-3). HF gives the
// top logits: top logprob k = top_logit k - logit + logprob (same normalizer).
void check_logprobs_match(const GoldenStep& golden, float logprob, const std::vector<int32_t>& top_ids,
                          const std::vector<float>& top_logprobs, size_t num_top) {
  constexpr float kTol = 2e-3f;
  CHECK(std::abs(logprob - golden.logprob) < kTol);
  REQUIRE(top_ids.size() == num_top);
  REQUIRE(top_logprobs.size() == num_top);
  const float log_z = golden.logit - golden.logprob;
  for (size_t k = 0; k < num_top && k < golden.top_ids.size(); ++k) {
    INFO("top " << k);
    CHECK(std::abs(top_logprobs[k] - (golden.top_logits[k] - log_z)) < kTol);
    // Ids compare exactly unless a neighbour is within the tolerance (a near-tie may swap).
    const bool tie_before = k > 0 && golden.top_logits[k - 1] - golden.top_logits[k] < kTol;
    const bool tie_after = k + 1 < golden.top_logits.size() && golden.top_logits[k] - golden.top_logits[k + 1] < kTol;
    if (!tie_before && !tie_after) CHECK(top_ids[k] == golden.top_ids[k]);
    if (k > 0) CHECK(top_logprobs[k] <= top_logprobs[k - 1]);
  }
}

// Greedy requests with params.logprobs = N, streamed and not: every delta and final
// carries one entry per token, and together they give HF's logprobs.
void check_golden_logprobs(client::Client& c) {
  constexpr int kNumTop = 5;
  const auto cases = load_golden("qwen3-tiny");
  std::set<std::string> ids;
  std::map<std::string, size_t> case_of;
  for (size_t i = 0; i < cases.size(); ++i) {
    const int n = static_cast<int>(std::min<size_t>(std::max<size_t>(cases[i].num_reliable_tokens(), 1), 8));
    for (bool stream : {true, false}) {
      auto r = greedy("lp" + std::to_string(i) + (stream ? "s" : "f"), n);
      r.prompt_token_ids = cases[i].prompt;
      r.params.logprobs = kNumTop;
      r.stream = stream;
      REQUIRE(c.submit(r).ok());
      ids.insert(r.request_id);
      case_of[r.request_id] = i;
    }
  }
  auto got = collect(c, ids, 60s);
  for (const auto& id : ids) {
    const auto& s = got[id];
    const auto& golden = cases[case_of[id]];
    INFO(id << " " << s.finish_reason << " " << s.message);
    REQUIRE(s.done);
    CHECK(s.events_with_logprobs >= 1);
    CHECK(s.events_with_mismatched_logprobs == 0);
    REQUIRE(s.logprobs.size() == s.tokens.size());
    for (size_t t = 0; t < s.tokens.size(); ++t) {
      INFO("token " << t);
      REQUIRE(s.tokens[t] == golden.generated[t]);
      CHECK(s.logprobs[t].top_ids.front() == s.tokens[t]);  // greedy: the sampled token is the top one
      check_logprobs_match(golden.steps[t], s.logprobs[t].logprob, s.logprobs[t].top_ids, s.logprobs[t].top_logprobs,
                           kNumTop);
    }
  }
  // A request that did not ask gets no logprobs field.
  auto plain = greedy("nolp", 3);
  plain.prompt_token_ids = cases[0].prompt;
  REQUIRE(c.submit(plain).ok());
  auto p = collect(c, {"nolp"}, 20s)["nolp"];
  REQUIRE(p.done);
  CHECK(p.events_with_logprobs == 0);
}

}  // namespace

TEST_CASE("serve qwen3-tiny, one worker: 64 golden streams, text prompts, stop strings") {
  ServeProcess server(model_yaml(), "", "model");
  check_golden_streams(server);

  auto c = server.connect();
  REQUIRE(c);
  // A text prompt is tokenized by the server; the final reports the ids it ran.
  const std::string prompt = "The quick brown fox jumps over the lazy dog.";
  auto text_req = greedy("text");
  text_req.prompt = prompt;
  REQUIRE(c->submit(text_req).ok());
  auto text = collect(*c, {"text"}, 20s)["text"];
  REQUIRE(text.finish_reason == "length");
  CHECK(text.prompt_token_ids == tokenizer().encode(prompt));
  CHECK(text.tokens.size() == static_cast<size_t>(kMaxTokens));
  CHECK(text.text == tokenizer().decode(text.tokens, /*skip_special_tokens=*/true));

  // A stop string taken from the middle of that reply: the streamed text (deltas and
  // final together) ends right before its first occurrence.
  REQUIRE(text.text.size() >= 12);
  auto is_continuation = [&](size_t i) { return i < text.text.size() && (static_cast<unsigned char>(text.text[i]) & 0xC0) == 0x80; };
  size_t begin = text.text.size() / 2, end = begin + 4;
  while (is_continuation(begin)) ++begin;  // whole UTF-8 characters only
  end = std::max(end, begin + 1);
  while (is_continuation(end)) ++end;
  REQUIRE(end <= text.text.size());
  const std::string stop = text.text.substr(begin, end - begin);
  auto stop_req = text_req;
  stop_req.request_id = "stop";
  stop_req.params.stop = {stop, "never appears in this text \x01"};
  REQUIRE(c->submit(stop_req).ok());
  auto stopped = collect(*c, {"stop"}, 20s)["stop"];
  INFO("stop string '" << stop << "' in '" << text.text << "'");
  CHECK(stopped.finish_reason == "stop");
  CHECK(stopped.stop_reason == stop);
  CHECK(stopped.text == text.text.substr(0, text.text.find(stop)));
  CHECK(stopped.tokens.size() < text.tokens.size());
  CHECK(std::equal(stopped.tokens.begin(), stopped.tokens.end(), text.tokens.begin()));

  // A conversation in `messages` runs as the model's chat template renders it.
  const std::vector<client::ChatTurn> turns = {
      {"system", "You are terse."}, {"user", "Hi!"}, {"assistant", "Hello."}, {"user", "What is 2+2?"}};
  auto chat_req = greedy("chat", 8);
  chat_req.messages = turns;
  REQUIRE(c->submit(chat_req).ok());
  auto chat = collect(*c, {"chat"}, 20s)["chat"];
  REQUIRE(chat.finish_reason == "length");
  std::vector<ChatMessage> local;
  for (const auto& t : turns) local.push_back(ChatMessage{t.role, t.content, std::nullopt});
  auto rendered = tokenizer().apply_chat_template(local);
  REQUIRE(rendered.ok());
  CHECK(rendered->find("<|im_start|>assistant\n") != std::string::npos);
  CHECK(chat.prompt_token_ids == tokenizer().encode(*rendered));

  // Logprobs come back in deltas and finals and match HF's.
  check_golden_logprobs(*c);

  // `vela generate --server --json --logprobs N` prints them, one per output token.
  {
    const auto cases = load_golden("qwen3-tiny");
    const auto& golden = cases[0];
    const size_t n = std::min<size_t>(std::max<size_t>(golden.num_reliable_tokens(), 1), 4);
    std::string csv;
    for (int32_t t : golden.prompt) csv += (csv.empty() ? "" : ",") + std::to_string(t);
    PipedProcess gen({std::string(VELA_BINARY_DIR) + "/bin/vela", "generate", "--server", server.endpoint(),
                      "--prompt-ids", csv, "--max-tokens", std::to_string(n), "--ignore-eos", "--logprobs", "3",
                      "--json"});
    REQUIRE(gen.wait_exit(30s) == 0);
    INFO("vela generate printed: " << gen.output());
    auto j = nlohmann::json::parse(gen.output());
    REQUIRE(j["logprobs"].size() == n);
    for (size_t t = 0; t < n; ++t) {
      const auto& lp = j["logprobs"][t];
      CHECK(lp["token_id"].get<int32_t>() == golden.generated[t]);
      check_logprobs_match(golden.steps[t], lp["logprob"].get<float>(), lp["top_ids"].get<std::vector<int32_t>>(),
                           lp["top_logprobs"].get<std::vector<float>>(), 3);
    }
  }

  ::kill(server.pid(), SIGTERM);
  CHECK(server.wait_exit(20s) == 0);
}

TEST_CASE("serve qwen3-tiny, tensor parallel (2 workers, Gloo): the same 64 golden streams") {
  ServeProcess server(model_yaml("parallel:\n  tensor_parallel_size: 2\n"), "", "model");
  check_golden_streams(server);
  CHECK(server.worker_pids().size() == 2);
}

TEST_CASE("serve qwen3-tiny, data parallel (2 replicas): the same 64 golden streams") {
  ServeProcess server(model_yaml("parallel:\n  data_parallel_size: 2\n"), "", "model");
  check_golden_streams(server);
  CHECK(server.worker_pids().size() == 2);
}
