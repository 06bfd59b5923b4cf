#include <catch2/catch.hpp>

#include <map>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/logging.h"

#include "configs/config.h"

using namespace vela;

static std::string error_of(const std::string& yaml, std::vector<std::string> overrides = {}) {
  auto r = load_config_text(yaml, "test.yaml", overrides);
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

TEST_CASE("defaults for every key") {
  auto r = load_config("");
  REQUIRE(r.ok());
  CHECK(r->cache.block_size == 16);
  CHECK(r->scheduler.max_num_seqs == 256);
  CHECK(r->scheduler.policy == "fcfs");
  CHECK(r->parallel.tensor_parallel_size == 1);
  CHECK(r->trace.enabled == false);
  CHECK(r->logging.level == "info");
  CHECK(config_keys().size() >= 30);
}

TEST_CASE("a file sets keys and --set overrides them in order") {
  // In the temp directory, not the working directory (a stray copy once got committed).
  const std::string path =
      (std::filesystem::temp_directory_path() / ("vela_test_config_" + std::to_string(::getpid()) + ".yaml")).string();
  {
    std::ofstream out(path);
    out << "model:\n  path: /m\n  load_format: dummy\nscheduler:\n  max_num_seqs: 8\n  policy: priority\n"
           "parallel:\n  tensor_parallel_size: 2\n  devices: [cpu, cpu]\nlogging:\n  components: {worker: debug}\n";
  }
  auto r = load_config(path, {"scheduler.max_num_seqs=4", "cache.enable_prefix_caching=false",
                              "cache.gpu_memory_utilization=0.5"});
  REQUIRE(r.ok());
  CHECK(r->model.path == "/m");
  CHECK(r->model.load_format == "dummy");
  CHECK(r->scheduler.max_num_seqs == 4);
  CHECK(r->scheduler.policy == "priority");
  CHECK(r->parallel.devices == std::vector<std::string>{"cpu", "cpu"});
  CHECK(r->cache.enable_prefix_caching == false);
  CHECK(r->cache.gpu_memory_utilization == 0.5);
  CHECK(r->logging.components.at("worker") == "debug");
  // The dump loads back to the same values.
  auto again = load_config_text(dump_config(*r), "dump");
  REQUIRE(again.ok());
  CHECK(again->scheduler.max_num_seqs == 4);
  CHECK(again->parallel.devices.size() == 2);
  std::filesystem::remove(path);
}

TEST_CASE("unknown keys and sections are errors naming them and the file") {
  auto e = error_of("scheduler:\n  max_num_seq: 4\n");
  CHECK(e.find("test.yaml") != std::string::npos);
  CHECK(e.find("scheduler.max_num_seq'") != std::string::npos);
  CHECK(error_of("schedular:\n  max_num_seqs: 4\n").find("unknown section 'schedular'") != std::string::npos);
  CHECK(error_of("", {"cache.blocksize=16"}).find("unknown key 'cache.blocksize'") != std::string::npos);
  CHECK(error_of("", {"no_dot=1"}).find("section.key=value") != std::string::npos);
}

TEST_CASE("wrong types are errors naming the key and the value") {
  auto e = error_of("scheduler:\n  max_num_seqs: lots\n");
  CHECK(e.find("scheduler.max_num_seqs") != std::string::npos);
  CHECK(e.find("'lots'") != std::string::npos);
  CHECK(error_of("cache:\n  enable_prefix_caching: maybe\n").find("cache.enable_prefix_caching") != std::string::npos);
  CHECK(error_of("trace:\n  enabled: [1, 2]\n").find("trace.enabled") != std::string::npos);
  CHECK(error_of("scheduler:\n  policy: lifo\n").find("not one of: fcfs | priority") != std::string::npos);
  CHECK(error_of("model: [1]\n").find("model") != std::string::npos);
  CHECK(error_of("- a\n- b\n").find("top level") != std::string::npos);
  CHECK(error_of("model: {path: [unclosed\n").find("YAML syntax error") != std::string::npos);
  CHECK(error_of("", {"scheduler.max_num_seqs=2.5"}).find("--set: scheduler.max_num_seqs") != std::string::npos);
}

TEST_CASE("out-of-range values are errors naming the key and the range") {
  CHECK(error_of("cache:\n  block_size: 0\n").find("cache.block_size: value 0 is out of range [1, 1024]") !=
        std::string::npos);
  CHECK(error_of("cache:\n  gpu_memory_utilization: 0\n").find("(0, 1]") != std::string::npos);
  CHECK(error_of("cache:\n  gpu_memory_utilization: 1.5\n").find("cache.gpu_memory_utilization") != std::string::npos);
  CHECK(error_of("parallel:\n  tensor_parallel_size: -1\n").find("parallel.tensor_parallel_size") != std::string::npos);
  CHECK(error_of("parallel:\n  devices: [gpu0]\n").find("'gpu0'") != std::string::npos);
  CHECK(error_of("parallel:\n  tensor_parallel_size: 2\n  devices: [cpu]\n").find("needs 2") != std::string::npos);
  CHECK(error_of("parallel:\n  step_timeout_s: nan\n").find("parallel.step_timeout_s") != std::string::npos);
}

TEST_CASE("a missing file is an error naming it") {
  auto r = load_config("/nonexistent/vela.yaml");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("/nonexistent/vela.yaml") != std::string::npos);
}

TEST_CASE("configs/README.md documents every key") {
  std::ifstream in(std::string(VELA_SOURCE_DIR) + "/configs/README.md");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  // The row as `vela config --keys --markdown` prints it (regenerate the table with
  // that when a key, its type or its default changes).
  for (const auto& k : config_keys()) {
    INFO(k.name);
    CHECK(ss.str().find("| `" + k.name + "` | " + k.type + " | `" + k.default_value + "` |") != std::string::npos);
  }
}

TEST_CASE("numbers print as the shortest text that reads back to them") {
  std::map<std::string, std::string> defaults;
  for (const auto& k : config_keys()) defaults[k.name] = k.default_value;
  CHECK(defaults["cache.gpu_memory_utilization"] == "0.9");
  CHECK(defaults["frontend.drain_timeout_s"] == "60");
  auto r = load_config_text("cache:\n  gpu_memory_utilization: 0.1\n", "t");
  REQUIRE(r.ok());
  const std::string dumped = dump_config(*r);
  CHECK(dumped.find("gpu_memory_utilization: 0.1\n") != std::string::npos);
  auto back = load_config_text(dumped, "dump");
  REQUIRE(back.ok());
  CHECK(back->cache.gpu_memory_utilization == 0.1);
}

TEST_CASE("the logging section sets per-component levels") {
  auto r = load_config_text("logging:\n  level: warn\n  components: {engine_core: debug}\n", "t");
  REQUIRE(r.ok());
  apply_logging(r->logging);
  CHECK(logger("engine_core")->level() == spdlog::level::debug);
  CHECK(logger("frontend")->level() == spdlog::level::warn);
}

TEST_CASE("placement: the ranks of one replica need distinct GPUs, shared GPUs need shares that fit") {
  // Two ranks of one replica on one GPU: their collectives would deadlock.
  auto e = error_of("parallel:\n  tensor_parallel_size: 2\n  devices: [cuda:0, cuda:0]\n");
  CHECK(e.find("parallel.devices") != std::string::npos);
  CHECK(e.find("ranks 0 and 1 of replica 0 are both on cuda:0") != std::string::npos);
  // Two replicas on one GPU at 0.9 each: more than the card, the key and the fix named.
  e = error_of("parallel:\n  data_parallel_size: 2\n  devices: [cuda:0, cuda:0]\n");
  CHECK(e.find("cache.gpu_memory_utilization") != std::string::npos);
  CHECK(e.find("2 workers share cuda:0") != std::string::npos);
  CHECK(e.find("at most 0.50") != std::string::npos);
  CHECK(error_of("parallel:\n  devices: [cuda:x]\n").find("parallel.devices") != std::string::npos);
  // Shares that fit, replicas on disjoint GPUs, and TP x DP over shared GPUs are placements.
  for (const char* ok : {"parallel:\n  data_parallel_size: 2\n  devices: [cuda:0, cuda:0]\ncache:\n  gpu_memory_utilization: 0.45\n",
                         "parallel:\n  data_parallel_size: 2\n  devices: [cuda:0, cuda:1]\n",
                         "parallel:\n  tensor_parallel_size: 2\n  data_parallel_size: 2\n  devices: [cuda:0, cuda:1, cuda:0, cuda:1]\n"
                         "cache:\n  gpu_memory_utilization: 0.5\n",
                         "parallel:\n  tensor_parallel_size: 2\n  devices: [cpu, cpu]\n"}) {
    INFO(ok);
    CHECK(load_config_text(ok, "test.yaml").ok());
  }
}

TEST_CASE("endpoints are validated with the rest of the config, naming the key") {
  CHECK(error_of("frontend:\n  endpoint: bogus://x\n").find("frontend.endpoint") != std::string::npos);
  CHECK(error_of("", {"frontend.endpoint=bogus://x"}).find("unknown transport 'bogus'") != std::string::npos);
  CHECK(error_of("", {"frontend.endpoint=/tmp/x.sock"}).find("frontend.endpoint") != std::string::npos);
  CHECK(error_of("", {"frontend.endpoint=ipc://relative.sock"}).find("absolute path") != std::string::npos);
  CHECK(error_of("", {"frontend.endpoint=ipc:///" + std::string(200, 'a')}).find("limit") != std::string::npos);
  CHECK(error_of("", {"frontend.endpoint=tcp://127.0.0.1"}).find("tcp://HOST:PORT") != std::string::npos);
  CHECK(error_of("", {"frontend.endpoint=tcp://127.0.0.1:http"}).find("not a number") != std::string::npos);
  CHECK(error_of("", {"frontend.endpoint=tcp://127.0.0.1:70000"}).find("out of range") != std::string::npos);
  CHECK(load_config("", {"frontend.endpoint=tcp://127.0.0.1:5555"}).ok());
  CHECK(load_config("", {"frontend.endpoint=tcp://localhost:*"}).ok());
  CHECK(load_config("", {"frontend.endpoint=tcp://[::1]:5555"}).ok());
  CHECK(load_config("", {"frontend.endpoint=ipc:///run/vela/frontend.sock"}).ok());
}

namespace {
// Two key files in a fresh directory, removed at the end of the test.
struct KeyFiles {
  std::filesystem::path dir;
  std::string secret, authorized;
  KeyFiles() {
    char tmpl[] = "/tmp/vela-test-keys-XXXXXX";
    dir = ::mkdtemp(tmpl);
    secret = (dir / "server.key").string();
    authorized = (dir / "authorized").string();
    std::ofstream(secret) << "unused by the config check\n";
    std::ofstream(authorized) << "\n";
    std::filesystem::permissions(secret, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  ~KeyFiles() { std::filesystem::remove_all(dir); }
  std::vector<std::string> sets() const {
    return {"security.curve_secret_key_file=" + secret, "security.curve_authorized_keys_file=" + authorized};
  }
};
}  // namespace

TEST_CASE("a non-loopback bind is refused unless clients must authenticate") {
  for (std::string ep : {"tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://192.0.2.7:5555", "tcp://[::]:5555",
                         "tcp://eth0:5555"}) {
    INFO(ep);
    const std::string e = error_of("", {"frontend.endpoint=" + ep});
    CHECK(e.find("frontend.endpoint") != std::string::npos);
    CHECK(e.find("without authentication") != std::string::npos);
  }
  const std::string w = error_of("", {"parallel.worker_host=0.0.0.0"});
  CHECK(w.find("parallel.worker_host") != std::string::npos);
  CHECK(w.find("without authentication") != std::string::npos);
  CHECK(error_of("", {"parallel.worker_host="}).find("parallel.worker_host") != std::string::npos);

  KeyFiles keys;
  auto sets = keys.sets();
  sets.push_back("frontend.endpoint=tcp://0.0.0.0:5555");
  sets.push_back("parallel.worker_host=0.0.0.0");
  auto ok = load_config("", sets);
  REQUIRE(ok.ok());
  CHECK(ok->security.curve());
}

TEST_CASE("the security keys come in pairs, and the secret one is private") {
  KeyFiles keys;
  CHECK(error_of("", {keys.sets()[0]}).find("security.curve_authorized_keys_file") != std::string::npos);
  CHECK(error_of("", {keys.sets()[1]}).find("security.curve_secret_key_file") != std::string::npos);
  std::filesystem::permissions(keys.secret, std::filesystem::perms::group_read, std::filesystem::perm_options::add);
  const std::string e = error_of("", keys.sets());
  CHECK(e.find("security.curve_secret_key_file") != std::string::npos);
  CHECK(e.find("mode 0640") != std::string::npos);
  CHECK(error_of("", {"security.curve_secret_key_file=/nonexistent/key", keys.sets()[1]}).find("not a readable file") !=
        std::string::npos);
}
