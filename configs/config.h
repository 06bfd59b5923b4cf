#pragma once
// The engine's configuration: one struct per YAML section, a default for every key.
// configs/README.md documents each key; load_config() validates them.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"

namespace vela {

struct ModelConfig {
  std::string path;                 // HF model directory (config.json + *.safetensors)
  std::string tokenizer;            // directory with tokenizer.json; empty = model path
  std::string dtype = "auto";       // auto | float32 | bfloat16 | float16
  int32_t max_model_len = 0;        // 0 = the model's max_position_embeddings
  std::string load_format = "auto"; // auto | safetensors | dummy
  uint64_t seed = 0;                // seeds dummy weights and unseeded sampling
  bool enforce_eager = false;       // CUDA: no decode graphs, every step launched op by op
  int32_t cuda_graph_max_batch = 512;  // CUDA: decode graphs up to this batch (capped at max_num_seqs)
};

struct ParallelConfig {
  int32_t tensor_parallel_size = 1;
  int32_t data_parallel_size = 1;
  std::vector<std::string> devices; // e.g. [cpu, cpu] or [cuda:0, cuda:1]; empty = auto
  std::string worker_transport = "ipc";   // ipc | tcp (engine <-> worker sockets)
  std::string worker_host = "127.0.0.1";  // bind address when worker_transport is tcp
  double worker_startup_timeout_s = 120;  // Hello + load + profile deadline
  double step_timeout_s = 30;             // a step slower than this marks the worker dead
  bool restart_workers = false;           // on worker death: restart (true) or exit non-zero
  std::string step_channel = "shm";       // shm | socket: how steps and outputs travel
  int32_t shm_slot_kib = 4096;            // shared-memory slot size; larger steps take the socket
  double step_spin_us = 200;              // spin before sleeping while a step is due
};

struct CacheConfig {
  int32_t block_size = 16;                // tokens per KV block
  double gpu_memory_utilization = 0.9;    // fraction of device memory for weights + KV
  int32_t num_gpu_blocks = 0;             // > 0 overrides profiling
  double cpu_kv_cache_gib = 1.0;          // KV cache size on the CPU backend
  bool enable_prefix_caching = true;
};

struct SchedulerConfig {
  int32_t max_num_seqs = 256;
  int32_t max_num_batched_tokens = 8192;
  std::string policy = "fcfs";            // fcfs | priority
  bool enable_chunked_prefill = true;
  int32_t long_prefill_token_threshold = 0;  // 0 = auto (4% of max_model_len, vLLM's rule)
  bool async_scheduling = true;           // schedule step N+1 while the workers run step N
};

struct FrontendConfig {
  std::string endpoint = "ipc:///tmp/vela-frontend.sock";  // ZMQ ROUTER for clients
  int64_t max_message_bytes = 16 << 20;                    // larger client frames are refused
  int32_t max_pending_requests = 4096;                     // queue bound before "busy"
  double drain_timeout_s = 60;                             // SIGTERM: time in-flight requests get to finish
  int32_t tokenizer_threads = 2;                           // threads tokenizing prompts off the frontend's
  int32_t detokenizer_threads = 2;                         // threads detokenizing and streaming, a request pinned to one
};

// Authentication of the client endpoint (CURVE, libzmq's built-in: keys from files;
// `vela keygen` writes them). Required before the frontend binds a non-loopback
// address. Worker sockets on tcp always use CURVE with keys made per run.
struct SecurityConfig {
  std::string curve_secret_key_file;       // the server's secret key (Z85); mode 0600
  std::string curve_authorized_keys_file;  // client public keys allowed to connect, one a line
  bool curve() const { return !curve_secret_key_file.empty(); }
};

// The OpenAI-compatible HTTP front (http/), beside the ZeroMQ one; off while port is 0.
struct HttpConfig {
  int32_t port = 0;                         // 0 = no HTTP server
  std::string host = "127.0.0.1";           // bind address; anything else is an explicit choice
  std::string api_key;                      // non-empty: every /v1, /tokenize, /detokenize call needs it
  std::string api_key_env;                  // name of an environment variable holding the key
  std::string served_model_name;            // the model's name in the API; empty = the model directory's name
  int64_t max_body_bytes = 4 << 20;         // larger request bodies get 413
  int32_t max_header_bytes = 16 << 10;      // larger request headers get 431
  int32_t max_connections = 2048;           // open connections at most; more are refused with 503
  double max_requests_per_s = 50;           // per connection (token bucket, burst of the same size); over: 429
  double idle_timeout_s = 60;               // a connection that sends nothing for this long is closed
};

struct TraceConfig {
  bool enabled = false;
  std::string path = "vela-trace";  // writes PATH.jsonl and PATH.chrome.json
};

struct LoggingConfig {
  std::string level = "info";                      // trace | debug | info | warn | error | off
  std::map<std::string, std::string> components;   // per-component level overrides
};

struct Config {
  ModelConfig model;
  ParallelConfig parallel;
  CacheConfig cache;
  SchedulerConfig scheduler;
  FrontendConfig frontend;
  HttpConfig http;
  SecurityConfig security;
  TraceConfig trace;
  LoggingConfig logging;
};

// Loads FILE (empty = defaults only), then applies "section.key=value" overrides in
// order. Errors name the file (or "--set"), the key and the bad value.
Result<Config> load_config(const std::string& file, const std::vector<std::string>& overrides = {});

// Parses YAML text (as if it were the file named source_name).
Result<Config> load_config_text(const std::string& yaml_text, const std::string& source_name,
                                const std::vector<std::string>& overrides = {});

// Every key as "section.key", with its type, default and description (docs and `vela config`).
struct ConfigKeyInfo {
  std::string name;
  std::string type;
  std::string default_value;
  std::string doc;
};
std::vector<ConfigKeyInfo> config_keys();

// The effective configuration as YAML (what `vela config --show` prints).
std::string dump_config(const Config& config);

}  // namespace vela

namespace vela {
// Applies the logging section to every component logger (levels were validated on load).
void apply_logging(const LoggingConfig& logging);
}  // namespace vela
