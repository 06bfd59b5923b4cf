#pragma once
// A loaded CPU model runner over a reference model, for the runner tests.
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "model/communicator.h"
#include "tests/model/golden.h"
#include "workers/model_runner.h"

namespace vela::testing {

inline LoadModel load_request(const std::string& model, int32_t tp_rank = 0, int32_t tp_size = 1) {
  LoadModel req;
  req.model_path = model_dir(model);
  req.block_size_tokens = 16;
  req.max_num_batched_tokens = 2048;
  req.max_num_seqs = 64;
  req.tp_rank = tp_rank;
  req.tensor_parallel_size = tp_size;
  req.seed = 1234;
  return req;
}

inline std::unique_ptr<Runner> loaded_runner(const std::string& model, int32_t num_blocks = 1024,
                                             Communicator* comm = nullptr, int32_t tp_rank = 0, int32_t tp_size = 1) {
  auto runner = make_model_runner(comm, ModelRunnerOptions{64ull << 20});
  auto profile = runner->load(load_request(model, tp_rank, tp_size));
  if (!profile) FAIL(profile.error().message);
  REQUIRE(profile->kv_cache_bytes_available == 64ull << 20);
  auto init = runner->init_kv_cache(InitKVCache{num_blocks});
  REQUIRE(init.ok());
  return runner;
}

inline SamplingParams greedy() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

}  // namespace vela::testing
