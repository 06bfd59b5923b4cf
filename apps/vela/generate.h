#pragma once
// `vela generate`: the options both forms share. With --server ENDPOINT the
// requests go to a running `vela serve` (generate_remote.cpp); without it the
// engine runs in this process (cmd_generate.cpp). Output is the same either way:
// streamed text for one request, or with --json one object per request with
// request_id, prompt_token_ids, token_ids, text and finish_reason (and, with
// --logprobs N >= 0, logprobs: one {token_id, logprob, top_ids, top_logprobs} per
// output token).
#include <cstdint>
#include <string>
#include <vector>

#include "messages/engine_core_output.h"
#include "messages/sampling_params.h"

namespace vela::cli {

struct GenerateOpts {
  std::string server;                      // empty: in-process
  std::string server_key_file, client_key_file;  // CURVE (a server with security.curve_* set)
  std::string config_file;                 // in-process engine config
  std::vector<std::string> overrides;
  std::string model, tokenizer, load_format, device;
  std::vector<std::string> prompts;        // one request each
  std::vector<std::string> prompt_ids;     // comma-separated ids, one request each
  int32_t copies = 1;                      // -n: each prompt this many times
  bool chat = false, json = false, no_stream = false;
  double timeout_s = 600;
  SamplingParams params;
  int64_t seed = -1;
};

// One finished request, as printed.
struct GenerateResult {
  std::string request_id;
  std::vector<int32_t> prompt_token_ids;
  std::vector<int32_t> token_ids;
  std::string text;
  std::string finish_reason;
  std::vector<TokenLogprobs> logprobs;  // one per token_ids entry, with --logprobs N >= 0
};

// Prints results as --json lines or as text; returns the process exit code.
int print_results(const GenerateOpts& o, const std::vector<GenerateResult>& results);

int run_remote(const GenerateOpts& o);

}  // namespace vela::cli
