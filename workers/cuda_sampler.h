#pragma once
// CudaSampler: Sampler::sample on the GPU, token for token the same answer (see
// kernels/sampling.h for how the arithmetic is kept identical). Per call: the rows'
// parameters (and the token histories of rows with penalties) are packed into one
// pinned buffer and sent with one copy; three launches (prepare, the top-p sort when
// a row needs it, draw); one copy back; one stream synchronisation.
// Not thread-safe; one stream. Device memory is sized at creation for max_rows x
// vocab (about 6 x 4 bytes x max_rows x vocab, see cuda_sampler.cpp); only the
// history and its hash tables grow, when a batch needs more.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/result.h"
#include "messages/model_runner_output.h"
#include "workers/sampler.h"

namespace vela {

class CudaSampler {
 public:
  static Result<std::unique_ptr<CudaSampler>> create(int32_t max_rows, int32_t vocab_size, cudaStream_t stream);
  ~CudaSampler();
  CudaSampler(const CudaSampler&) = delete;
  CudaSampler& operator=(const CudaSampler&) = delete;

  // As Sampler::sample; logits [rows, vocab] f32 on the device (row stride free, unit
  // column stride). Errors name the bad argument or the failing CUDA call.
  Status sample(const Tensor& logits, std::span<const SampleRow> rows, int32_t num_top,
                      std::vector<int32_t>& tokens, StepLogprobs* logprobs);
  // sample() in two halves, so the host can do other work while the GPU draws:
  // enqueue() packs and sends the rows (their histories are copied: the rows may change
  // once it returns) and launches the draw; collect() waits for it and reads the
  // tokens (and logprobs) back. Each enqueue() is followed by one collect().
  Status enqueue(const Tensor& logits, std::span<const SampleRow> rows, int32_t num_top, bool want_logprobs);
  Status collect(std::vector<int32_t>& tokens, StepLogprobs* logprobs);

  // Tests: rows whose draw took the one-thread exact path in the last call (the
  // parallel prefix sums were too close to a threshold to be trusted), and a switch
  // that forces that path everywhere.
  int32_t last_sequential_rows() const { return last_sequential_rows_; }
  void set_force_sequential(bool on) { force_sequential_ = on; }

 private:
  CudaSampler(int32_t max_rows, int32_t vocab, cudaStream_t stream);
  Status init();
  Status ensure_history(int64_t num_ids, int64_t num_table_slots);

  int32_t max_rows_, vocab_;
  cudaStream_t stream_;
  bool force_sequential_ = false;
  int32_t last_sequential_rows_ = 0;
  int64_t pending_rows_ = -1;   // rows enqueued and not collected yet (-1: none)
  int32_t pending_top_ = -1;

  // Device.
  float* work_ = nullptr;            // [max_rows, vocab]
  float* sorted_e_ = nullptr;        // [max_rows, vocab]
  int32_t* ids_ = nullptr;           // [max_rows, vocab] = column index
  int32_t* sorted_ids_ = nullptr;    // [max_rows, vocab]
  uint32_t* seen_bits_ = nullptr;    // [max_rows, (vocab + 31) / 32]
  int32_t* num_candidates_ = nullptr;  // [max_rows]
  void* sort_temp_ = nullptr;
  size_t sort_temp_bytes_ = 0;
  void* in_ = nullptr;               // packed inputs (row params, segments, history)
  size_t in_bytes_ = 0;
  int2* table_ = nullptr;            // count tables of presence/frequency rows
  int64_t table_slots_ = 0;
  void* out_ = nullptr;              // tokens, fallbacks, logprobs
  size_t out_bytes_ = 0;
  // Pinned host mirrors.
  void* in_host_ = nullptr;
  void* out_host_ = nullptr;
};

}  // namespace vela
