#include "configs/config.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdio>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include <sys/stat.h>

#include "common/endpoint.h"

namespace vela {
namespace {

struct BadValue {
  std::string what;
};

// ---- scalar parsing with range checks --------------------------------------
std::string scalar_text(const YAML::Node& n) {
  if (!n.IsScalar()) throw BadValue{"expected a scalar value"};
  return n.Scalar();
}

int64_t as_int(const YAML::Node& n, int64_t lo, int64_t hi) {
  std::string s = scalar_text(n);
  size_t pos = 0;
  int64_t v = 0;
  try {
    v = std::stoll(s, &pos, 10);
  } catch (...) {
    throw BadValue{"expected an integer, got '" + s + "'"};
  }
  if (pos != s.size()) throw BadValue{"expected an integer, got '" + s + "'"};
  if (v < lo || v > hi)
    throw BadValue{"value " + s + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]"};
  return v;
}

double as_double(const YAML::Node& n, double lo, double hi, bool lo_open) {
  std::string s = scalar_text(n);
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(s, &pos);
  } catch (...) {
    throw BadValue{"expected a number, got '" + s + "'"};
  }
  if (pos != s.size() || !std::isfinite(v)) throw BadValue{"expected a finite number, got '" + s + "'"};
  if (v < lo || v > hi || (lo_open && v == lo)) {
    std::ostringstream os;
    os << "value " << s << " is out of range " << (lo_open ? "(" : "[") << lo << ", " << hi << "]";
    throw BadValue{os.str()};
  }
  return v;
}

bool as_bool(const YAML::Node& n) {
  std::string s = scalar_text(n);
  if (s == "true" || s == "True" || s == "yes" || s == "on" || s == "1") return true;
  if (s == "false" || s == "False" || s == "no" || s == "off" || s == "0") return false;
  throw BadValue{"expected true or false, got '" + s + "'"};
}

std::string as_choice(const YAML::Node& n, const std::vector<std::string>& choices) {
  std::string s = scalar_text(n);
  for (const auto& c : choices)
    if (c == s) return s;
  std::string all;
  for (const auto& c : choices) all += (all.empty() ? "" : " | ") + c;
  throw BadValue{"'" + s + "' is not one of: " + all};
}

const std::vector<std::string> kLevels = {"trace", "debug", "info", "warn", "error", "critical", "off"};

// ---- the key table ---------------------------------------------------------
struct KeySpec {
  std::string section;
  std::string key;
  std::string type;
  std::string doc;
  std::function<void(const YAML::Node&, Config&)> set;
  std::function<YAML::Node(const Config&)> get;
};

template <class T> YAML::Node node_of(const T& v) { return YAML::Node(v); }
// A double as the shortest text that reads back to it (0.9, not yaml-cpp's
// 0.90000000000000002), so dumps and configs/README.md show what a user would write.
YAML::Node shortest_node(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return YAML::Node(ec == std::errc() ? std::string(buf, end) : std::to_string(v));
}

#define VELA_INT(SEC, KEY, LO, HI, DOC)                                                       \
  KeySpec{#SEC, #KEY, "int", DOC,                                                            \
          [](const YAML::Node& n, Config& c) {                                               \
            c.SEC.KEY = static_cast<decltype(c.SEC.KEY)>(as_int(n, LO, HI));                 \
          },                                                                                 \
          [](const Config& c) { return node_of(c.SEC.KEY); }}
#define VELA_REAL(SEC, KEY, LO, HI, LO_OPEN, DOC)                                             \
  KeySpec{#SEC, #KEY, "number", DOC,                                                         \
          [](const YAML::Node& n, Config& c) { c.SEC.KEY = as_double(n, LO, HI, LO_OPEN); }, \
          [](const Config& c) { return shortest_node(c.SEC.KEY); }}
#define VELA_BOOL(SEC, KEY, DOC)                                                              \
  KeySpec{#SEC, #KEY, "bool", DOC, [](const YAML::Node& n, Config& c) { c.SEC.KEY = as_bool(n); }, \
          [](const Config& c) { return node_of(c.SEC.KEY); }}
#define VELA_STR(SEC, KEY, DOC)                                                               \
  KeySpec{#SEC, #KEY, "string", DOC,                                                         \
          [](const YAML::Node& n, Config& c) { c.SEC.KEY = n.IsNull() ? "" : scalar_text(n); }, \
          [](const Config& c) { return node_of(c.SEC.KEY); }}
#define VELA_CHOICE(SEC, KEY, DOC, ...)                                                       \
  KeySpec{#SEC, #KEY, "one of: " #__VA_ARGS__, DOC,                                          \
          [](const YAML::Node& n, Config& c) { c.SEC.KEY = as_choice(n, {__VA_ARGS__}); },   \
          [](const Config& c) { return node_of(c.SEC.KEY); }}

const std::vector<KeySpec>& specs() {
  constexpr int64_t kI32 = std::numeric_limits<int32_t>::max();
  static const std::vector<KeySpec> kSpecs = {
      VELA_STR(model, path, "HF model directory (config.json, *.safetensors). Empty: the embedded demo model."),
      VELA_STR(model, tokenizer, "Directory holding tokenizer.json. Empty: the model directory."),
      VELA_CHOICE(model, dtype, "Compute dtype. auto: float32 on the CPU, bfloat16 on CUDA. CUDA also computes in float32 (bf16 checkpoints widened on the GPU, fp32 KV cache, true fp32 GEMMs: precision, not speed); the CPU only in float32; float16 is refused at model load.",
                  "auto", "float32", "bfloat16", "float16"),
      VELA_INT(model, max_model_len, 0, 1 << 24, "Longest prompt + output in tokens. 0: the model's max_position_embeddings."),
      VELA_CHOICE(model, load_format, "auto/safetensors read the weights; dummy makes seeded random weights of the config's shapes.",
                  "auto", "safetensors", "dummy"),
      VELA_INT(model, seed, 0, std::numeric_limits<int64_t>::max(), "Seeds dummy weights and requests without their own seed."),
      VELA_BOOL(model, enforce_eager, "CUDA: launch every step op by op. false: pure decode steps replay CUDA graphs captured at startup (see cuda_graph_max_batch); mixed prefill/decode steps are always eager. No effect on the CPU."),
      VELA_INT(model, cuda_graph_max_batch, 1, 512, "CUDA: the largest decode batch replayed from a graph. Graphs are captured after the KV cache at 1, 2, 4, 8, 16, 24, ... up to this (capped at scheduler.max_num_seqs); a decode step replays the smallest that holds it, padded. Larger steps run eagerly."),

      VELA_INT(parallel, tensor_parallel_size, 1, 64, "Tensor-parallel shards per engine replica (one worker process each)."),
      VELA_INT(parallel, data_parallel_size, 1, 64, "Engine-core replicas behind the one frontend."),
      KeySpec{"parallel", "devices", "list of strings",
              "Device per worker rank: cpu or cuda:N (the CUDA build). Empty: cpu for every rank.",
              [](const YAML::Node& n, Config& c) {
                c.parallel.devices.clear();
                if (n.IsNull()) return;
                if (n.IsScalar()) {  // --set parallel.devices=cpu,cpu
                  std::stringstream ss(n.Scalar());
                  std::string item;
                  while (std::getline(ss, item, ','))
                    if (!item.empty()) c.parallel.devices.push_back(item);
                } else if (n.IsSequence()) {
                  for (const auto& e : n) c.parallel.devices.push_back(scalar_text(e));
                } else {
                  throw BadValue{"expected a list of device names"};
                }
                for (const auto& d : c.parallel.devices)
                  if (d != "cpu" && d.rfind("cuda:", 0) != 0)
                    throw BadValue{"device '" + d + "' is neither cpu nor cuda:N"};
              },
              [](const Config& c) {
                YAML::Node n(YAML::NodeType::Sequence);
                for (const auto& d : c.parallel.devices) n.push_back(d);
                return n;
              }},
      VELA_CHOICE(parallel, worker_transport, "ZeroMQ transport between engine and workers.", "ipc", "tcp"),
      VELA_STR(parallel, worker_host, "Bind address for worker sockets when worker_transport is tcp (their sockets use CURVE with keys made per run). A non-loopback address needs the security section."),
      VELA_REAL(parallel, worker_startup_timeout_s, 0.0, 3600.0, true, "Deadline for a worker's Hello, weight load and profile."),
      VELA_REAL(parallel, step_timeout_s, 0.0, 3600.0, true, "A worker that has not answered a step within this is treated as dead."),
      VELA_CHOICE(parallel, step_channel, "Step path to local workers: shared-memory rings with eventfd wakes (shm), or the ZeroMQ socket (socket). Control messages always use the socket.", "shm", "socket"),
      VELA_INT(parallel, shm_slot_kib, 64, 1048576, "Size of one shared-memory slot (4 per direction); a step or output larger than this travels on the socket."),
      VELA_REAL(parallel, step_spin_us, 0.0, 10000.0, false, "How long the engine (step in flight) and a worker (after a step) spin on the shared-memory channel before sleeping; 0 = never spin."),
      VELA_BOOL(parallel, restart_workers, "On a worker's death: restart the replica's workers (true), or the replica is dead (false): the server serves on with the others and exits non-zero when none is left."),

      VELA_INT(cache, block_size, 1, 1024, "Tokens per KV-cache block."),
      VELA_REAL(cache, gpu_memory_utilization, 0.0, 1.0, true, "Fraction of device memory for weights, activations and KV cache."),
      VELA_INT(cache, num_gpu_blocks, 0, kI32, "KV blocks per worker. 0: from memory profiling."),
      VELA_REAL(cache, cpu_kv_cache_gib, 0.0, 1024.0, true, "KV-cache size on the CPU backend, in GiB."),
      VELA_BOOL(cache, enable_prefix_caching, "Reuse KV blocks of identical prompt prefixes."),

      VELA_INT(scheduler, max_num_seqs, 1, 65536, "Requests in one step at most."),
      VELA_INT(scheduler, max_num_batched_tokens, 1, kI32, "Tokens computed in one step at most (the step's token budget). 8192: prefill GEMMs near their peak on a GPU (W2 on an H200: 67.5% of the bound vs 61.6% at 2048); lower it to shorten the steps decodes share with a prefill."),
      VELA_CHOICE(scheduler, policy, "Order of waiting requests: arrival, or priority (lower first) then arrival.", "fcfs", "priority"),
      VELA_BOOL(scheduler, enable_chunked_prefill, "Split prompts larger than the remaining budget over several steps."),
      VELA_INT(scheduler, long_prefill_token_threshold, 0, kI32, "Most prompt tokens one request may take per step. 0: 4% of max_model_len."),
      VELA_BOOL(scheduler, async_scheduling, "Schedule step N+1 while the workers run step N (two steps in flight; the engine's own time per step hides behind the workers')."),

      VELA_STR(frontend, endpoint, "ZeroMQ endpoint the client ROUTER binds: ipc:///ABSOLUTE/PATH (created mode 0600; refused while another live server holds it) or tcp://HOST:PORT (a non-loopback HOST needs the security section)."),
      VELA_INT(frontend, max_message_bytes, 1024, int64_t{1} << 30, "Client frames larger than this are refused."),
      VELA_INT(frontend, max_pending_requests, 1, 1 << 24, "Requests queued at most before new ones are refused as busy."),
      VELA_REAL(frontend, drain_timeout_s, 0.0, 86400.0, false, "On SIGTERM/SIGINT: seconds the requests in flight get to finish (new ones are refused as draining). Those still running then get a final with finish_reason shutdown and vela serve exits 3. `vela serve --drain-timeout` overrides it."),

      VELA_INT(http, port, 0, 65535, "TCP port of the OpenAI-compatible HTTP server (docs/HTTP.md). 0: no HTTP server."),
      VELA_STR(http, host, "Address the HTTP server binds. Anything but loopback exposes the server: set an API key."),
      VELA_STR(http, api_key, "API key the HTTP API requires as `Authorization: Bearer KEY` (401 without it). Empty: no key."),
      VELA_STR(http, api_key_env, "Name of an environment variable holding the API key (used when http.api_key is empty)."),
      VELA_STR(http, served_model_name, "The model's name in the HTTP API (`model` field, /v1/models). Empty: the model directory's name."),
      VELA_INT(http, max_body_bytes, 1024, int64_t{1} << 30, "Request bodies larger than this are refused with 413."),
      VELA_INT(http, max_header_bytes, 1024, 1 << 20, "Request headers larger than this are refused with 431."),
      VELA_INT(http, max_connections, 1, 1 << 20, "Open HTTP connections at most; a connection over it gets 503 and is closed."),
      VELA_REAL(http, max_requests_per_s, 0.0, 1e9, true, "Requests per second one connection may send (burst of the same size); over it: 429."),
      VELA_REAL(http, idle_timeout_s, 0.0, 86400.0, true, "A connection that sends nothing (headers, body, next request) for this long is closed."),
      VELA_INT(frontend, tokenizer_threads, 1, 64, "Threads that tokenize prompts and render chat templates, off the frontend's thread: a huge prompt delays only the requests behind it on its thread."),
      VELA_INT(frontend, detokenizer_threads, 1, 64, "Threads that detokenize streamed tokens, match stop strings and send the deltas and finals, off the frontend's thread; each request stays on one (its events in order), so a request slow to detokenize delays only those beside it."),

      VELA_STR(security, curve_secret_key_file, "File holding the server's CURVE secret key (`vela keygen`; mode 0600). Set: clients must use CURVE with this server's public key."),
      VELA_STR(security, curve_authorized_keys_file, "File of client CURVE public keys allowed to connect, one a line (# comments); required with curve_secret_key_file."),

      VELA_BOOL(trace, enabled, "Record every message that crosses an actor or process boundary."),
      VELA_STR(trace, path, "Trace file prefix: writes PATH.jsonl and PATH.chrome.json."),

      VELA_CHOICE(logging, level, "Default log level.", "trace", "debug", "info", "warn", "error", "critical", "off"),
      KeySpec{"logging", "components", "map of component to level",
              "Per-component levels, e.g. {engine_core: debug, worker: warn}.",
              [](const YAML::Node& n, Config& c) {
                c.logging.components.clear();
                if (n.IsNull()) return;
                if (n.IsScalar()) {  // --set logging.components=engine_core:debug,worker:warn
                  std::stringstream ss(n.Scalar());
                  std::string item;
                  while (std::getline(ss, item, ',')) {
                    auto colon = item.find(':');
                    if (colon == std::string::npos) throw BadValue{"expected component:level, got '" + item + "'"};
                    c.logging.components[item.substr(0, colon)] =
                        as_choice(YAML::Node(item.substr(colon + 1)), kLevels);
                  }
                  return;
                }
                if (!n.IsMap()) throw BadValue{"expected a map of component: level"};
                for (const auto& kv : n)
                  c.logging.components[kv.first.as<std::string>()] = as_choice(kv.second, kLevels);
              },
              [](const Config& c) {
                YAML::Node n(YAML::NodeType::Map);
                for (const auto& [k, v] : c.logging.components) n[k] = v;
                return n;
              }},
  };
  return kSpecs;
}

const KeySpec* find_spec(const std::string& section, const std::string& key) {
  for (const auto& s : specs())
    if (s.section == section && s.key == key) return &s;
  return nullptr;
}

bool known_section(const std::string& section) {
  for (const auto& s : specs())
    if (s.section == section) return true;
  return false;
}

Error key_error(const std::string& source, const std::string& name, const std::string& what) {
  return make_error("bad_config", source + ": " + name + ": " + what);
}

Status apply(const KeySpec& spec, const YAML::Node& value, Config& c, const std::string& source) {
  try {
    spec.set(value, c);
  } catch (const BadValue& b) {
    return key_error(source, spec.section + "." + spec.key, b.what);
  } catch (const YAML::Exception& e) {
    return key_error(source, spec.section + "." + spec.key, e.what());
  }
  return ok_status();
}

// Which worker drives which device: replica r's ranks take parallel.devices
// [r * tp, (r + 1) * tp). The ranks of one replica need distinct GPUs (their
// collectives would deadlock on one); replicas may share a GPU, each taking
// cache.gpu_memory_utilization of it, as long as the shares fit the card.
Status check_placement(const Config& c, const std::string& source) {
  const auto& devices = c.parallel.devices;
  const size_t tp = size_t(c.parallel.tensor_parallel_size);
  std::map<std::string, int> workers_on;
  for (size_t i = 0; i < devices.size(); ++i) {
    const std::string& d = devices[i];
    if (d != "cpu" && !(d.rfind("cuda", 0) == 0 && (d == "cuda" || (d.size() > 5 && d[4] == ':' &&
                                                                      d.find_first_not_of("0123456789", 5) == std::string::npos))))
      return key_error(source, "parallel.devices", "'" + d + "' is not a device (cpu, cuda or cuda:N)");
    const std::string canonical = d == "cuda" ? "cuda:0" : d;
    if (canonical == "cpu") continue;
    ++workers_on[canonical];
    const size_t replica = i / tp;
    for (size_t j = replica * tp; j < i; ++j)
      if ((devices[j] == "cuda" ? "cuda:0" : devices[j]) == canonical)
        return key_error(source, "parallel.devices",
                         "ranks " + std::to_string(j % tp) + " and " + std::to_string(i % tp) + " of replica " +
                             std::to_string(replica) + " are both on " + canonical +
                             ": the ranks of one replica need distinct GPUs");
  }
  for (const auto& [device, n] : workers_on) {
    if (n < 2) continue;
    const double total = n * c.cache.gpu_memory_utilization;
    if (total > 1.0 + 1e-9) {
      char text[256];
      std::snprintf(text, sizeof text,
                    "%d workers share %s, each given %.2f of it: %.2f of the card; lower it to at most %.2f",
                    n, device.c_str(), c.cache.gpu_memory_utilization, total, 1.0 / n);
      return key_error(source, "cache.gpu_memory_utilization", text);
    }
  }
  return ok_status();
}

// A key file named by the config: a readable regular file; a secret one readable by
// its owner only (as ssh insists).
Status check_key_file(const std::string& path, bool secret, const std::string& key, const std::string& source) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    return key_error(source, key, "'" + path + "' is not a readable file");
  if (secret && (st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return key_error(source, key, "'" + path + "' is readable by others (mode " + mode + "): chmod 600 it");
  }
  return ok_status();
}

// Who may reach the sockets: endpoints parse (a bad scheme fails here, not after the
// model loads) and nothing listens beyond this host without authentication.
Status check_endpoints(const Config& c, const std::string& source) {
  auto frontend = parse_endpoint(c.frontend.endpoint);
  if (!frontend) return key_error(source, "frontend.endpoint", frontend.error().message);
  const SecurityConfig& sec = c.security;
  if (sec.curve_secret_key_file.empty() != sec.curve_authorized_keys_file.empty()) {
    const char* missing = sec.curve_secret_key_file.empty() ? "security.curve_secret_key_file"
                                                            : "security.curve_authorized_keys_file";
    return key_error(source, missing, "is required with the other security key (CURVE authenticates both ends)");
  }
  if (sec.curve()) {
    VELA_TRY(check_key_file(sec.curve_secret_key_file, true, "security.curve_secret_key_file", source));
    VELA_TRY(check_key_file(sec.curve_authorized_keys_file, false, "security.curve_authorized_keys_file", source));
  }
  const std::string how = "set security.curve_secret_key_file and security.curve_authorized_keys_file "
                          "(vela keygen) to authenticate clients, or bind 127.0.0.1";
  if (frontend->scheme == "tcp" && !is_loopback_host(frontend->host) && !sec.curve())
    return key_error(source, "frontend.endpoint",
                     "'" + c.frontend.endpoint + "' listens beyond this host without authentication: " + how);
  if (c.parallel.worker_host.empty()) return key_error(source, "parallel.worker_host", "must not be empty");
  if (c.parallel.worker_host.find_first_of(":/ ") != std::string::npos && c.parallel.worker_host.front() != '[')
    return key_error(source, "parallel.worker_host", "'" + c.parallel.worker_host + "' is not a host address");
  if (!is_loopback_host(c.parallel.worker_host) && !sec.curve())
    return key_error(source, "parallel.worker_host",
                     "'" + c.parallel.worker_host + "' listens beyond this host without authentication: " + how);
  return ok_status();
}

// Cross-key rules that no single key can check.
Status check_consistency(const Config& c, const std::string& source) {
  VELA_TRY(check_endpoints(c, source));
  if (!c.parallel.devices.empty()) {
    size_t need = static_cast<size_t>(c.parallel.tensor_parallel_size) * c.parallel.data_parallel_size;
    if (c.parallel.devices.size() != need)
      return key_error(source, "parallel.devices",
                       "lists " + std::to_string(c.parallel.devices.size()) + " devices but tensor_parallel_size x "
                       "data_parallel_size needs " + std::to_string(need));
  }
  VELA_TRY(check_placement(c, source));
  if (!c.scheduler.enable_chunked_prefill && c.model.max_model_len > c.scheduler.max_num_batched_tokens)
    return key_error(source, "scheduler.max_num_batched_tokens",
                     "must be >= model.max_model_len (" + std::to_string(c.model.max_model_len) +
                         ") when chunked prefill is off");
  return ok_status();
}

}  // namespace

Result<Config> load_config_text(const std::string& yaml_text, const std::string& source_name,
                                const std::vector<std::string>& overrides) {
  Config config;
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return make_error("bad_config", source_name + ": YAML syntax error: " + e.what());
  }
  if (root && !root.IsNull()) {
    if (!root.IsMap()) return make_error("bad_config", source_name + ": top level must be a map of sections");
    for (const auto& sec : root) {
      std::string section = sec.first.as<std::string>();
      if (!known_section(section))
        return make_error("bad_config", source_name + ": unknown section '" + section + "'");
      if (sec.second.IsNull()) continue;
      if (!sec.second.IsMap())
        return key_error(source_name, section, "a section must be a map of keys");
      for (const auto& kv : sec.second) {
        std::string key = kv.first.as<std::string>();
        const KeySpec* spec = find_spec(section, key);
        if (!spec) return make_error("bad_config", source_name + ": unknown key '" + section + "." + key + "'");
        VELA_TRY(apply(*spec, kv.second, config, source_name));
      }
    }
  }
  for (const auto& ov : overrides) {
    auto eq = ov.find('=');
    auto dot = ov.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot > eq)
      return make_error("bad_config", "--set " + ov + ": expected section.key=value");
    std::string section = ov.substr(0, dot);
    std::string key = ov.substr(dot + 1, eq - dot - 1);
    const KeySpec* spec = find_spec(section, key);
    if (!spec) return make_error("bad_config", "--set: unknown key '" + section + "." + key + "'");
    VELA_TRY(apply(*spec, YAML::Node(ov.substr(eq + 1)), config, "--set"));
  }
  VELA_TRY(check_consistency(config, source_name));
  return config;
}

Result<Config> load_config(const std::string& file, const std::vector<std::string>& overrides) {
  if (file.empty()) return load_config_text("", "<defaults>", overrides);
  std::ifstream in(file);
  if (!in) return make_error("bad_config", file + ": cannot open the config file");
  std::stringstream ss;
  ss << in.rdbuf();
  return load_config_text(ss.str(), file, overrides);
}

std::vector<ConfigKeyInfo> config_keys() {
  Config defaults;
  std::vector<ConfigKeyInfo> out;
  for (const auto& s : specs()) {
    YAML::Emitter e;
    e << YAML::Flow << s.get(defaults);
    out.push_back({s.section + "." + s.key, s.type, e.c_str(), s.doc});
  }
  return out;
}

std::string dump_config(const Config& config) {
  YAML::Node root(YAML::NodeType::Map);
  for (const auto& s : specs()) root[s.section][s.key] = s.get(config);
  YAML::Emitter e;
  e << root;
  return e.c_str();
}

}  // namespace vela

#include "common/logging.h"

namespace vela {
void apply_logging(const LoggingConfig& logging) {
  spdlog::level::level_enum def = spdlog::level::info;
  parse_log_level(logging.level, &def);
  std::map<std::string, spdlog::level::level_enum> per;
  for (const auto& [component, text] : logging.components) {
    spdlog::level::level_enum l = def;
    if (parse_log_level(text, &l)) per[component] = l;
  }
  set_log_levels(def, per);
}
}  // namespace vela
