// `vela generate`: without --server, the engine core and one CPU worker run in
// this process (tokenize, schedule, run, sample, detokenize, print); with
// --server ENDPOINT the same requests go to a running `vela serve`.
#include <nlohmann/json.hpp>

#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include "apps/vela/bench_common.h"
#include "apps/vela/commands.h"
#include "apps/vela/generate.h"
#include "common/logging.h"
#include "configs/config.h"
#include "llm/engine_setup.h"
#include "llm/llm_engine.h"
#include "llm/text_output.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace vela::cli {
namespace {

Result<std::vector<int32_t>> parse_ids(const std::string& csv, const std::string& flag) {
  std::vector<int32_t> ids;
  std::stringstream in(csv);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    size_t pos = 0;
    try {
      long long v = std::stoll(item, &pos);
      if (pos != item.size() || v < INT32_MIN || v > INT32_MAX) throw std::out_of_range(item);
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::exception&) {
      return make_error("bad_flag", flag + ": '" + item + "' is not a token id");
    }
  }
  return ids;
}

int run_local(const GenerateOpts& o) {
  auto config = load_config(o.config_file, o.overrides);
  if (!config) fail(config.error().message);
  if (!o.model.empty()) config->model.path = o.model;
  if (!o.tokenizer.empty()) config->model.tokenizer = o.tokenizer;
  if (!o.load_format.empty()) config->model.load_format = o.load_format;
  if (!o.device.empty()) config->parallel.devices = {o.device};
  apply_logging(config->logging);
  auto resolved = resolve_model_paths(*config);
  if (!resolved) fail(resolved.error().message);

  std::unique_ptr<Tokenizer> tokenizer;
  if (auto dir = tokenizer_dir(*resolved); !dir.empty()) {
    auto tok = Tokenizer::from_file(dir + "/tokenizer.json");
    if (!tok) fail(tok.error().message);
    tokenizer = std::move(tok.value());
  }
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& text : o.prompts) {
    if (!tokenizer) fail("--prompt needs a tokenizer (--tokenizer DIR); or give --prompt-ids");
    std::string rendered = text;
    if (o.chat) {
      ChatMessage m;
      m.role = "user";
      m.content = text;
      auto r = tokenizer->apply_chat_template({m});
      if (!r) fail(r.error().message);
      rendered = *r;
    }
    prompts.push_back(tokenizer->encode(rendered));
  }
  for (const auto& csv : o.prompt_ids) {
    auto ids = parse_ids(csv, "--prompt-ids");
    if (!ids) fail(ids.error().message);
    prompts.push_back(*ids);
  }
  if (prompts.empty()) fail("give --prompt TEXT or --prompt-ids 1,2,3");

  auto engine = LLMEngine::create(*resolved);
  if (!engine) fail(engine.error().message);
  LLMEngine& e = **engine;

  struct Live {
    std::string request_id;
    std::vector<int32_t> prompt;
    TextOutput output;
    std::string finish_reason;
    std::vector<TokenLogprobs> logprobs;  // beside output.token_ids()
  };
  std::vector<std::unique_ptr<Live>> live;
  std::map<std::string, Live*> by_id;
  const size_t copies = static_cast<size_t>(o.copies);
  for (size_t i = 0; i < prompts.size() * copies; ++i) {
    EngineCoreRequest req;
    req.request_id = "gen-" + std::to_string(i);
    req.prompt_token_ids = prompts[i / copies];
    req.sampling_params = o.params;
    if (o.seed >= 0) req.sampling_params.seed = static_cast<uint64_t>(o.seed);
    live.push_back(std::make_unique<Live>(Live{req.request_id, req.prompt_token_ids, TextOutput(tokenizer.get(), o.params.stop), "", {}}));
    by_id[req.request_id] = live.back().get();
    if (auto rejected = e.add_request(std::move(req))) {
      live.back()->finish_reason = "error: " + rejected->error;
      std::cerr << "vela: request " << i << " rejected: " << rejected->error << "\n";
    }
  }
  while (e.has_unfinished_requests()) {
    auto outs = e.step();
    if (!outs) fail(outs.error().message);
    for (const auto& out : (*outs)->outputs) {
      Live* r = by_id[out.request_id];
      if (!r) continue;
      if (!r->output.stopped()) r->logprobs.insert(r->logprobs.end(), out.logprobs.begin(), out.logprobs.end());
      if (auto stop = r->output.append(out.new_token_ids)) {
        e.abort_requests({out.request_id});  // a stop string ended it: free its blocks now
        r->finish_reason = "stop";
        continue;
      }
      if (out.finish_reason != FinishReason::kNone && r->finish_reason.empty())
        r->finish_reason = finish_reason_name(out.finish_reason);
      if (!o.json && live.size() == 1) std::cout << r->output.take_streamable() << std::flush;
    }
  }
  std::vector<GenerateResult> results;
  for (auto& r : live) {
    std::string rest = r->output.take_rest();
    if (!o.json && live.size() == 1) std::cout << rest;
    results.push_back({r->request_id, r->prompt, r->output.token_ids(), r->output.text(), r->finish_reason, r->logprobs});
  }
  return print_results(o, results);
}

}  // namespace

int print_results(const GenerateOpts& o, const std::vector<GenerateResult>& results) {
  int failures = 0;
  for (const auto& r : results) {
    if (r.finish_reason.rfind("error", 0) == 0) ++failures;
    if (o.json) {
      nlohmann::json j = {{"request_id", r.request_id}, {"prompt_token_ids", r.prompt_token_ids},
                          {"token_ids", r.token_ids}, {"text", r.text}, {"finish_reason", r.finish_reason}};
      if (o.params.logprobs >= 0) {
        j["logprobs"] = nlohmann::json::array();
        for (const auto& lp : r.logprobs)
          j["logprobs"].push_back({{"token_id", lp.token_id}, {"logprob", lp.logprob}, {"top_ids", lp.top_ids},
                                   {"top_logprobs", lp.top_logprobs}});
      }
      std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else if (results.size() == 1) {
      std::cout << "\n[" << r.finish_reason << ", " << r.prompt_token_ids.size() << " prompt + " << r.token_ids.size()
                << " output tokens]\n";
    } else {
      std::cout << "--- " << r.request_id << " [" << r.finish_reason << ", " << r.token_ids.size() << " tokens]\n"
                << r.text << "\n";
    }
  }
  return failures > 0 ? 1 : 0;
}

void add_generate_command(CLI::App& app) {
  auto o = std::make_shared<GenerateOpts>();
  o->params.temperature = 0.0f;
  auto* cmd = app.add_subcommand("generate", "Generate text: in this process, or from a running `vela serve` (--server)");
  cmd->add_option("--server", o->server, "frontend endpoint of a running `vela serve` (e.g. ipc:///tmp/vela-frontend.sock)");
  cmd->add_option("--server-key", o->server_key_file,
                  "with --server: file with the server's CURVE public key (a server with security.curve_* set)");
  cmd->add_option("--client-key", o->client_key_file,
                  "with --server-key: file with this client's CURVE secret key (its public key must be authorized)");
  cmd->add_option("--model", o->model, "HF model directory (default: the embedded demo model)");
  cmd->add_option("--tokenizer", o->tokenizer, "directory with tokenizer.json (default: the model's)");
  cmd->add_option("--load-format", o->load_format, "auto | safetensors | dummy");
  cmd->add_option("--device", o->device, "in-process: cpu | cuda:N (default: parallel.devices, else cpu)");
  cmd->add_option("--config", o->config_file, "YAML engine config");
  cmd->add_option("--set", o->overrides, "override a config key: section.key=value");
  cmd->add_option("--prompt", o->prompts, "prompt text (repeatable: one request each, batched together)");
  cmd->add_option("--prompt-ids,--token-ids", o->prompt_ids, "prompt as comma-separated token ids (repeatable)");
  cmd->add_flag("--chat", o->chat, "render the prompt as a user turn with the model's chat template");
  cmd->add_option("--max-tokens", o->params.max_tokens, "output tokens at most")->check(CLI::Range(1, 1 << 30));
  cmd->add_option("--min-tokens", o->params.min_tokens, "no EOS/stop token before this many")->check(CLI::NonNegativeNumber);
  cmd->add_option("--temperature", o->params.temperature, "0 = greedy (the default)")->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--top-p", o->params.top_p)->check(CLI::Range(1e-6, 1.0));
  cmd->add_option("--top-k", o->params.top_k)->check(CLI::NonNegativeNumber);
  cmd->add_option("--min-p", o->params.min_p)->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--seed", o->seed, "per-request seed");
  cmd->add_option("--stop", o->params.stop, "stop string (repeatable)");
  cmd->add_option("--stop-token-id", o->params.stop_token_ids, "stop token id (repeatable)");
  cmd->add_flag("--ignore-eos", o->params.ignore_eos, "keep going past EOS");
  cmd->add_option("--logprobs", o->params.logprobs,
                  "with --json: each output token's logprob and the top N (0: the sampled token's only; -1 none)");
  cmd->add_option("-n,--num-requests", o->copies, "send each prompt this many times, concurrently")->check(CLI::Range(1, 100000));
  cmd->add_flag("--no-stream", o->no_stream, "with --server: one final message per request");
  cmd->add_option("--timeout", o->timeout_s, "with --server: give up after this many seconds");
  cmd->add_flag("--json", o->json, "one JSON object per request");
  cmd->callback([o]() {
    int code = o->server.empty() ? run_local(*o) : run_remote(*o);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace vela::cli
