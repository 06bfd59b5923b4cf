// Paged attention (kernels/attention.h) against the CPU fp32 reference
// (vela::ops::cpu::paged_attention) on the same bf16 values upcast to fp32, and
// with fp32 q, caches and output (model.dtype float32).
//
// Every case uses fresh seeded data: q inside a fused qkv row (token stride larger
// than nq*hd), a KV cache whose blocks are handed out in shuffled order, a block
// table with a stride larger than needed (unused entries -1, so a stray read
// faults), an output with a padded token stride poisoned with 0xFF (bf16 NaN) and a
// workspace poisoned the same way, so unwritten or partly written outputs fail.
//
// Tolerance: |gpu - ref| <= 6e-3 + 1e-2 * |ref| per element. Inputs are exact in
// both. v is in [-1, 1] and each output is a convex combination of v rows, so
// |ref| <= 1. Error sources: (1) the output's rounding to bf16, <= 2^-8 * |out|
// (8 significant bits, round to nearest); (2) the prefill kernel rounds P to bf16
// before P V: each weight is off by <= 2^-8 relative, which moves the output by
// <= 2^-8 * sum_j p_j |v_j| / l <= 2^-8 (l itself is summed from fp32 P, so the
// weights do not renormalise that error away, but it stays within that bound);
// (3) fp32 summation order and exp2 vs exp, ~1e-6. Worst case ~3.9e-3 + 3.9e-3 |ref|;
// the tolerance leaves a factor ~1.5 over that and is ~30x below the error of
// dropping a single key of a 32-key softmax.
//
// fp32 (model.dtype float32: q, caches and output fp32, always the generic kernel):
// |gpu - ref| <= 1e-4 + 1e-4 * |ref|. No rounding step is left, only fp32 order:
// each score is a dot product of hd terms whose partial sums round differently (and
// q is scaled before rather than after the sum): ~sqrt(hd) * 2^-24 * |partial sums|,
// ~1e-6 at q_range 3 but ~1e-5 (tails ~4e-5) for the peaky q_range 30 cases with
// scores up to ~35; expf vs libm exp within 2 ulps; the softmax sums over up to 32k
// keys in chunks vs in a row (~sqrt(n) * 2^-24 ~ 1e-5 relative). A difference e
// between two keys' score errors moves an output by <= e * |v_i - v_j| <= 2e. The
// bound is 2x over those tails, 60x below bf16's, and ~1000x below the error of
// dropping one key of a 32-key softmax.
#include <catch2/catch.hpp>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/attention.h"
#include "model/dtype.h"
#include "model/forward_batch.h"
#include "model/ops/cpu/cpu_ops.h"
#include "model/tensor.h"
#include "tests/kernels/gpu_test_util.h"

namespace {

using vela::DType;
using vela::Tensor;

struct Shape {
  int32_t nq, nk, hd, block_size;
};

struct Options {
  float q_range = 3.0f;             // q uniform in [-q_range, q_range] (larger: peakier softmax)
  int32_t max_query_len_pad = 0;    // passed max_query_len exceeds the real one by this (graph buckets)
  int32_t max_seq_len_pad = 0;      // likewise max_seq_len
  bool workspace = true;            // false: no workspace (forces a single split)
  // A CUDA graph's launch (workers/decode_graphs.h): max_seq_len is a bound
  // (max_model_len), each sequence splits its own keys by its seq_len.
  bool max_seq_len_is_bound = false;
  vela::kernels::DecodeKernel decode_kernel = vela::kernels::DecodeKernel::kAuto;
  vela::kernels::PrefillKernel prefill_kernel = vela::kernels::PrefillKernel::kAuto;
  // > 0: every sequence's first shared_prefix_blocks blocks are sequence 0's (a prefix
  // cache hit shared by the batch) and the kernel is told so (shared_prefix_len), so
  // the cascade's shared pass runs; cascade says whether the plan must take it.
  int32_t shared_prefix_blocks = 0;
  bool cascade = false;
  // A graph's cascade (with max_seq_len_is_bound): shared_prefix_len is the bound
  // max_seq_len - 1 and the kernels read the step's length (shared_prefix_blocks x
  // block size, or device_prefix_len when >= 0) from device memory.
  bool prefix_on_device = false;
  int32_t device_prefix_len = -1;
  // A mixed batch whose first shared_prefix_seqs sequences are one-token decodes
  // over the shared prefix (PagedAttentionParams::shared_prefix_seqs): they must take
  // the cascade as a decode batch of their own.
  int32_t shared_prefix_seqs = 0;
  // Run again with the cascade's shared pass on a side stream (PagedAttentionParams::
  // side_stream, at the device's highest priority, forked from and joined to a
  // non-blocking stream with PDL on): the output must equal the serial run's bit for bit.
  bool side_stream = false;
};

using vela::testing::HostOf;

// One uniform value in [-range, range) as element type T holds it on the host.
template <class T>
HostOf<T> random_elem(std::mt19937_64& rng, float range) {
  std::uniform_real_distribution<float> u(-range, range);
  if constexpr (std::is_same_v<T, float>) return u(rng);
  else return vela::f32_to_bf16(u(rng));
}

inline float host_f32(uint16_t bits) { return vela::bf16_to_f32(bits); }
inline float host_f32(float f) { return f; }

// Runs one batch (sequence s: q_lens[s] new tokens, seq_lens[s] tokens in the cache)
// on the GPU and on the CPU reference and compares every output element.
template <class Elem = vela::kernels::bf16>
void check_attention(const Shape& sh, const std::vector<int32_t>& q_lens, const std::vector<int32_t>& seq_lens,
                     uint64_t seed, const Options& opt = {}) {
  const int32_t num_seqs = int32_t(q_lens.size());
  REQUIRE(seq_lens.size() == q_lens.size());
  const int32_t nq = sh.nq, nk = sh.nk, hd = sh.hd, bs = sh.block_size;
  std::mt19937_64 rng(seed);

  std::vector<int32_t> qsl(size_t(num_seqs) + 1, 0);
  int32_t max_q = 0, max_seq = 0, max_blocks = 0, total_blocks = 0;
  for (int32_t s = 0; s < num_seqs; ++s) {
    REQUIRE(seq_lens[s] >= q_lens[s]);
    qsl[s + 1] = qsl[s] + q_lens[s];
    max_q = std::max(max_q, q_lens[s]);
    max_seq = std::max(max_seq, seq_lens[s]);
    int32_t blocks = (seq_lens[s] + bs - 1) / bs;
    max_blocks = std::max(max_blocks, blocks);
    total_blocks += blocks;
  }
  const int32_t T = qsl[num_seqs];
  total_blocks += 7;  // some blocks no one owns
  const int32_t table_stride = max_blocks + 3;

  // Block tables: shuffled block ids, unused entries -1; a shared prefix reuses
  // sequence 0's first blocks.
  std::vector<int32_t> ids(static_cast<size_t>(total_blocks));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<int32_t> table(size_t(num_seqs) * table_stride, -1);
  size_t next = 0;
  for (int32_t s = 0; s < num_seqs; ++s)
    for (int32_t b = 0; b < (seq_lens[s] + bs - 1) / bs; ++b) {
      REQUIRE(seq_lens[s] >= opt.shared_prefix_blocks * bs);
      table[size_t(s) * table_stride + b] = s > 0 && b < opt.shared_prefix_blocks ? table[size_t(b)] : ids[next++];
    }

  // KV cache [blocks, bs, nk, hd] and q inside a fused qkv row [T, nq + 2 nk, hd].
  const size_t cache_elems = size_t(total_blocks) * bs * nk * hd;
  std::vector<HostOf<Elem>> k_h(cache_elems), v_h(cache_elems);
  for (auto& x : k_h) x = random_elem<Elem>(rng, 1.0f);
  for (auto& x : v_h) x = random_elem<Elem>(rng, 1.0f);
  // The slots of a sequence's last block past its length hold NaN (a cache block's
  // unwritten rows may hold anything): no kernel may let them into a result (a key
  // there masked, its value row times a zero probability is still NaN).
  HostOf<Elem> nan_elem{};
  if constexpr (std::is_same_v<Elem, float>) nan_elem = std::numeric_limits<float>::quiet_NaN();
  else nan_elem = 0x7FC0;
  for (int32_t s = 0; s < num_seqs; ++s) {
    const int32_t b = (seq_lens[s] - 1) / bs;
    if (seq_lens[s] % bs == 0 || (s > 0 && b < opt.shared_prefix_blocks)) continue;
    const int64_t block = table[size_t(s) * table_stride + b];
    for (int32_t r = seq_lens[s] % bs; r < bs; ++r)
      for (int64_t e = 0; e < int64_t(nk) * hd; ++e) {
        k_h[size_t((block * bs + r) * nk * hd + e)] = nan_elem;
        v_h[size_t((block * bs + r) * nk * hd + e)] = nan_elem;
      }
  }
  const int64_t q_stride = int64_t(nq + 2 * nk) * hd;
  std::vector<HostOf<Elem>> qkv_h(size_t(T) * q_stride);
  for (auto& x : qkv_h) x = random_elem<Elem>(rng, opt.q_range);
  const int64_t out_stride = int64_t(nq) * hd + 64;

  vela::testing::DeviceArray<HostOf<Elem>> k_d(cache_elems), v_d(cache_elems), qkv_d(qkv_h.size()), out_d(size_t(T) * out_stride);
  vela::testing::DeviceArray<int32_t> table_d(table.size()), qsl_d(qsl.size()), seq_d(seq_lens.size());
  k_d.upload(k_h);
  v_d.upload(v_h);
  qkv_d.upload(qkv_h);
  table_d.upload(table);
  qsl_d.upload(qsl);
  seq_d.upload(seq_lens);
  CUDA_OK(cudaMemset(out_d.get(), 0xFF, out_d.bytes()));
  const size_t ws_bytes = opt.workspace ? vela::kernels::paged_attention_workspace_bytes(T, nq, hd) : 0;
  vela::testing::DeviceArray<char> ws_d(ws_bytes);
  if (ws_bytes > 0) CUDA_OK(cudaMemset(ws_d.get(), 0xFF, ws_bytes));

  vela::kernels::PagedAttentionParams<Elem> p;
  p.q = vela::testing::elems<Elem>(qkv_d);
  p.q_token_stride = q_stride;
  p.k_cache = vela::testing::elems<Elem>(k_d);
  p.v_cache = vela::testing::elems<Elem>(v_d);
  p.block_tables = table_d.get();
  p.block_table_stride = table_stride;
  p.query_start_loc = qsl_d.get();
  p.seq_lens = seq_d.get();
  p.out = vela::testing::elems<Elem>(out_d);
  p.out_token_stride = out_stride;
  p.num_seqs = num_seqs;
  p.num_tokens = T;
  p.num_q_heads = nq;
  p.num_kv_heads = nk;
  p.head_dim = hd;
  p.block_size = bs;
  p.num_blocks = total_blocks;
  p.max_query_len = max_q + opt.max_query_len_pad;
  p.max_seq_len = max_seq + opt.max_seq_len_pad;
  p.max_seq_len_is_bound = opt.max_seq_len_is_bound;
  p.scale = 1.0f / std::sqrt(float(hd));
  p.workspace = ws_bytes > 0 ? ws_d.get() : nullptr;
  p.workspace_bytes = ws_bytes;
  p.decode_kernel = opt.decode_kernel;
  p.prefill_kernel = opt.prefill_kernel;
  p.shared_prefix_len = opt.shared_prefix_blocks * bs;
  vela::testing::DeviceArray<int32_t> prefix_d(1);
  if (opt.prefix_on_device) {
    prefix_d.upload(std::vector<int32_t>{opt.device_prefix_len >= 0 ? opt.device_prefix_len : p.shared_prefix_len});
    p.shared_prefix_len = p.max_seq_len - 1;
    p.shared_prefix_len_device = prefix_d.get();
  }
  constexpr bool kF32 = std::is_same_v<Elem, float>;
  vela::kernels::PagedAttentionPlanInfo plan;  // fp32 takes the generic kernel: no plan
  if constexpr (!kF32) plan = vela::kernels::paged_attention_plan_info(p);
  if (opt.cascade) REQUIRE(plan.prefix_splits > 0);
  if (opt.shared_prefix_seqs > 0) {
    p.shared_prefix_seqs = opt.shared_prefix_seqs;
    if constexpr (!kF32) {
      auto dec = p;  // what paged_attention launches for the leading decodes
      dec.num_seqs = dec.num_tokens = opt.shared_prefix_seqs;
      dec.max_query_len = 1;
      REQUIRE(vela::kernels::paged_attention_plan_info(dec).prefix_splits > 0);
    }
  }
  CUDA_OK(vela::kernels::paged_attention(p, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  std::vector<HostOf<Elem>> out_h = out_d.download();
  if constexpr (!kF32) {
    if (opt.side_stream) {
      REQUIRE(plan.prefix_splits > 0);
      int least = 0, greatest = 0;
      CUDA_OK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
      cudaStream_t main_s = nullptr, side_s = nullptr;
      cudaEvent_t fork = nullptr, join = nullptr;
      CUDA_OK(cudaStreamCreateWithFlags(&main_s, cudaStreamNonBlocking));
      CUDA_OK(cudaStreamCreateWithPriority(&side_s, cudaStreamNonBlocking, greatest));
      CUDA_OK(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming));
      CUDA_OK(cudaEventCreateWithFlags(&join, cudaEventDisableTiming));
      auto side = p;
      side.side_stream = side_s;
      side.side_fork = fork;
      side.side_join = join;
      side.side_priority = greatest;
      CUDA_OK(cudaMemset(out_d.get(), 0xFF, out_d.bytes()));
      if (ws_bytes > 0) CUDA_OK(cudaMemset(ws_d.get(), 0xFF, ws_bytes));
      CUDA_OK(cudaDeviceSynchronize());
      CUDA_OK(vela::kernels::paged_attention(side, main_s));
      CUDA_OK(cudaStreamSynchronize(main_s));
      const std::vector<HostOf<Elem>> side_h = out_d.download();
      int64_t differ = 0;
      for (size_t i = 0; i < out_h.size(); ++i) differ += std::memcmp(&out_h[i], &side_h[i], sizeof(out_h[i])) != 0;
      std::printf("  the shared pass on a side stream: %lld of %zu outputs differ from the serial run\n",
                  (long long)differ, out_h.size());
      cudaEventDestroy(fork);
      cudaEventDestroy(join);
      cudaStreamDestroy(side_s);
      cudaStreamDestroy(main_s);
      REQUIRE(differ == 0);
    }
  }

  // CPU reference on the same values in fp32.
  Tensor q_ref = Tensor::zeros({T, nq, hd}, DType::kF32);
  for (int32_t t = 0; t < T; ++t)
    for (int64_t e = 0; e < int64_t(nq) * hd; ++e)
      q_ref.data<float>()[int64_t(t) * nq * hd + e] = host_f32(qkv_h[size_t(t * q_stride + e)]);
  vela::LayerKVCache cache;
  cache.k = Tensor::zeros({total_blocks, bs, nk, hd}, DType::kF32);
  cache.v = Tensor::zeros({total_blocks, bs, nk, hd}, DType::kF32);
  for (size_t i = 0; i < cache_elems; ++i) {
    cache.k.data<float>()[i] = host_f32(k_h[i]);
    cache.v.data<float>()[i] = host_f32(v_h[i]);
  }
  vela::ForwardBatch batch;
  batch.block_tables = Tensor::zeros({num_seqs, table_stride}, DType::kI32);
  std::memcpy(batch.block_tables.data<int32_t>(), table.data(), table.size() * sizeof(int32_t));
  batch.query_start_loc = Tensor::zeros({num_seqs + 1}, DType::kI32);
  std::memcpy(batch.query_start_loc.data<int32_t>(), qsl.data(), qsl.size() * sizeof(int32_t));
  batch.seq_lens = Tensor::zeros({num_seqs}, DType::kI32);
  std::memcpy(batch.seq_lens.data<int32_t>(), seq_lens.data(), seq_lens.size() * sizeof(int32_t));
  batch.num_tokens = T;
  batch.num_seqs = num_seqs;
  batch.max_seq_len = max_seq;
  Tensor out_ref = Tensor::zeros({T, nq, hd}, DType::kF32);
  vela::ops::cpu::paged_attention(q_ref, cache, batch, p.scale, out_ref);

  constexpr double kAtol = kF32 ? 1e-4 : 6e-3, kRtol = kF32 ? 1e-4 : 1e-2;
  HostOf<Elem> poison;
  std::memset(&poison, 0xFF, sizeof(poison));
  int64_t bad = 0, pad_bad = 0;
  double max_err = 0.0;
  for (int32_t t = 0; t < T; ++t) {
    for (int64_t e = 0; e < int64_t(nq) * hd; ++e) {
      const double ref = out_ref.data<float>()[int64_t(t) * nq * hd + e];
      const double got = host_f32(out_h[size_t(t * out_stride + e)]);
      const double err = std::fabs(got - ref);
      if (!(err <= kAtol + kRtol * std::fabs(ref))) {  // NaN (unwritten) fails too
        if (bad < 12)  // printed, not UNSCOPED_INFO: Catch drops those when REQUIRE ends the case
          std::printf("  bad: token %d head %lld dim %lld: gpu %.5f ref %.5f\n", t, (long long)(e / hd),
                      (long long)(e % hd), got, ref);
        ++bad;
      }
      if (err > max_err || std::isnan(err)) max_err = std::isnan(err) ? INFINITY : std::max(max_err, err);
    }
    for (int64_t e = int64_t(nq) * hd; e < out_stride; ++e)
      pad_bad += std::memcmp(&out_h[size_t(t * out_stride + e)], &poison, sizeof(poison)) != 0;
  }
  std::printf("attention %s nq %d nk %d hd %d block %d: %d seqs, %d tokens, max q_len %d, max seq_len %d%s: max |err| %.2e%s\n",
              kF32 ? "fp32" : "bf16", nq, nk, hd, bs, num_seqs, T, max_q, max_seq,
              plan.prefix_splits > 0
                  ? (", shared prefix " + std::to_string(opt.shared_prefix_blocks * bs) +
                     (opt.prefix_on_device ? " read on the device (" + std::to_string(opt.device_prefix_len) +
                                                 " if >= 0), grid of " + std::to_string(plan.prefix_splits)
                                           : " in " + std::to_string(plan.prefix_splits)) +
                     " splits")
                        .c_str()
                  : "",
              max_err, bad > 0 ? "  FAIL" : "");
  INFO("nq " << nq << " nk " << nk << " hd " << hd << " block " << bs << " seqs " << num_seqs << " tokens " << T
             << " max_q " << max_q << " max_seq " << max_seq << " seed " << seed << " max_err " << max_err);
  CHECK(pad_bad == 0);  // nothing written between rows
  REQUIRE(bad == 0);
}

std::vector<int32_t> decode_q(size_t n) { return std::vector<int32_t>(n, 1); }

constexpr Shape kLlama8B{32, 8, 128, 16};

}  // namespace

TEST_CASE("paged attention decode: head dims, GQA ratios, block sizes, odd contexts", "[attention][decode]") {
  uint64_t seed = 1;
  for (int32_t hd : {64, 128})
    for (auto [nq, nk] : {std::pair{4, 4}, std::pair{8, 2}, std::pair{16, 2}, std::pair{6, 2}})
      for (int32_t bs : {16, 32}) {
        // 7 sequences, one of each length class plus two random.
        std::mt19937 rng{uint32_t(seed)};
        std::vector<int32_t> lens = {1, 17, 97, 1000, 4096, int32_t(rng() % 3000 + 1), int32_t(rng() % 64 + 1)};
        check_attention({nq, nk, hd, bs}, decode_q(lens.size()), lens, seed++);
      }
  check_attention({8, 1, 128, 8}, decode_q(5), {1, 8, 9, 555, 2049}, 99);  // block 8
  check_attention({8, 1, 64, 8}, decode_q(5), {7, 16, 300, 1024, 3333}, 98);
}

TEST_CASE("paged attention decode: batch sweep at the Llama-8B shape (split-KV and not)", "[attention][decode]") {
  uint64_t seed = 100;
  for (int32_t ctx : {1, 17, 97, 1000, 4096, 32768}) check_attention(kLlama8B, decode_q(1), {ctx}, seed++);
  check_attention(kLlama8B, decode_q(7), {32768, 4096, 1, 32767, 97, 1000, 20000}, seed++);
  for (size_t batch : {size_t(64), size_t(256)}) {
    std::mt19937 rng{uint32_t(seed)};
    std::vector<int32_t> lens(batch);
    for (auto& x : lens) x = int32_t(rng() % (batch == 64 ? 4096 : 1024) + 1);
    lens[0] = 4096;
    lens[1] = 1;
    check_attention(kLlama8B, decode_q(batch), lens, seed++);
  }
  // Qwen3-0.6B shape, batch 64 at 4k.
  check_attention({16, 8, 128, 16}, decode_q(64), std::vector<int32_t>(64, 4096), seed++);
}

TEST_CASE("paged attention decode: workspace and graph-bucket edge cases", "[attention][decode]") {
  Options no_ws;
  no_ws.workspace = false;  // single split even where split-KV would be chosen
  check_attention(kLlama8B, decode_q(2), {4096, 333}, 200, no_ws);
  Options padded;
  padded.max_seq_len_pad = 5000;  // splits sized for longer sequences than exist
  check_attention(kLlama8B, decode_q(3), {4096, 1, 2500}, 201, padded);
  Options peaky;
  peaky.q_range = 30.0f;  // scores spanning tens of units: max tracking matters
  check_attention({8, 2, 128, 16}, decode_q(3), {5000, 64, 700}, 202, peaky);
  check_attention({8, 2, 64, 32}, {1, 2, 3}, {5000, 64, 700}, 203, peaky);  // same through the prefill kernel
}

TEST_CASE("paged attention mixed prefill + decode batches", "[attention][prefill]") {
  uint64_t seed = 300;
  for (int32_t hd : {64, 128})
    for (auto [nq, nk] : {std::pair{4, 4}, std::pair{8, 2}, std::pair{16, 2}})
      for (int32_t bs : {16, 32}) {
        std::mt19937 rng{uint32_t(seed)};
        std::vector<std::pair<int32_t, int32_t>> seqs;  // (q_len, seq_len)
        for (int i = 0; i < 3; ++i) {  // prefill chunks, the first without a prefix
          int32_t q = int32_t(rng() % 300 + 1);
          seqs.emplace_back(q, q + (i == 0 ? 0 : int32_t(rng() % 500)));
        }
        for (int i = 0; i < 20; ++i) seqs.emplace_back(1, int32_t(rng() % 2000 + 1));
        std::shuffle(seqs.begin(), seqs.end(), rng);  // prefill chunks anywhere in the batch
        std::vector<int32_t> q_lens, seq_lens;
        for (auto [q, len] : seqs) {
          q_lens.push_back(q);
          seq_lens.push_back(len);
        }
        check_attention({nq, nk, hd, bs}, q_lens, seq_lens, seed++);
      }
}

TEST_CASE("paged attention pure prefill, with and without prefix hits", "[attention][prefill]") {
  uint64_t seed = 400;
  for (int32_t hd : {64, 128})
    for (int32_t q : {1, 2, 17, 64, 65, 97, 300, 1000}) {
      check_attention({8, 2, hd, 16}, {q}, {q}, seed++);           // whole prompt
      check_attention({8, 1, hd, 32}, {q}, {q + 777}, seed++);     // prefix hit
      check_attention({4, 4, hd, 16}, {q, 5}, {q + 16, 5}, seed++);  // GQA 1:1, two sequences
    }
  check_attention(kLlama8B, {2048}, {2048}, seed++);
  check_attention(kLlama8B, {2048}, {2048 + 1500}, seed++);
  check_attention({8, 2, 128, 32}, {1024, 1024, 1}, {1024, 3000, 40}, seed++);
  Options padded;
  padded.max_query_len_pad = 200;  // grid sized for a longer chunk than any: extra tiles exit
  check_attention({8, 1, 128, 16}, {100, 37}, {100, 50}, seed++, padded);
  check_attention({16, 8, 128, 16}, {128}, {32768}, seed++);  // long prefix
}

namespace {

// The prefill kernel pinned on batches that stress it: prompts with and without a
// cached prefix, tiles cut by the causal diagonal and by the end of the keys, mixed
// decode rows, peaky scores, and the shared pass of a cascade decode (the same
// kernel, unmasked).
void check_prefill_kernel(vela::kernels::PrefillKernel kernel, int32_t g, int32_t hd, uint64_t seed) {
  Options o;
  o.prefill_kernel = kernel;
  const Shape sh{2 * g, 2, hd, 16};
  check_attention(sh, {200, 1, 63, 1}, {200, 900, 63 + 1000, 65}, seed++, o);
  check_attention(sh, {129}, {129 + 2048}, seed++, o);  // the P1 shape: a chunk behind a cached prefix
  Options peaky = o;
  peaky.q_range = 30.0f;
  check_attention(sh, {64, 7}, {64 + 130, 7}, seed++, peaky);
  check_attention(sh, {2, 40}, {2 + 777, 40}, seed++, peaky);
  Options c = o;
  c.cascade = true;
  c.shared_prefix_blocks = 42;  // 672 keys: the last shared tile is partial
  std::vector<int32_t> lens(24);
  for (size_t i = 0; i < lens.size(); ++i) lens[i] = 672 + int32_t((i * 37) % 300);
  check_attention(sh, decode_q(lens.size()), lens, seed++, c);
}

}  // namespace

TEST_CASE("paged attention prefill: mma.sync and wgmma pinned, GQA 1/2/4/8, and the cascade's shared pass",
          "[attention][prefill]") {
  // kAuto takes the warp-specialized kernel on sm_90 at head dim 128 (every other
  // prefill case above runs it there); here each kernel on the same batches. Head dim
  // 64 stays on mma.sync.
  using vela::kernels::PrefillKernel;
  uint64_t seed = 1200;
  for (int32_t g : {1, 2, 4, 8}) {
    check_prefill_kernel(PrefillKernel::kMmaSync, g, 64, seed += 10);
    check_prefill_kernel(PrefillKernel::kMmaSync, g, 128, seed += 10);
    check_prefill_kernel(PrefillKernel::kWgmma, g, 128, seed += 10);
    check_prefill_kernel(PrefillKernel::kWarpSpecialized, g, 128, seed += 10);
  }
}

TEST_CASE("paged attention prefill: the warp-specialized kernel on long prompts, block sizes 16-256, "
          "the cascade's shared pass and a graph-bounded one",
          "[attention][prefill]") {
  using vela::kernels::PrefillKernel;
  uint64_t seed = 1400;
  {
    Options o;
    o.prefill_kernel = PrefillKernel::kWarpSpecialized;
    // A whole prompt (tiles cut by the diagonal), then chunks behind cached keys whose
    // ends fall inside a block, for block sizes below, at and above a box of 64 keys.
    for (int32_t bs : {16, 32, 64, 128, 256}) {
      check_attention({16, 8, 128, bs}, {1000}, {1000}, seed++, o);
      check_attention({8, 4, 128, bs}, {300, 1, 129}, {300 + 1234, 700, 129 + 77}, seed++, o);
    }
    check_attention(kLlama8B, {2048}, {2048 + 1500}, seed++, o);
    Options padded = o;
    padded.max_query_len_pad = 300;  // more row tiles than any sequence needs: they exit
    check_attention({8, 1, 128, 16}, {100, 37}, {100, 50}, seed++, padded);
    // The shared pass: P1's shape (GQA 2) and a graph's, whose prefix length is read
    // on the device.
    Options c = o;
    c.cascade = true;
    c.shared_prefix_blocks = 128;  // 2,048 keys
    std::vector<int32_t> lens(64);
    for (size_t i = 0; i < lens.size(); ++i) lens[i] = 2048 + 50 + int32_t((i * 53) % 150);
    check_attention({16, 8, 128, 16}, decode_q(lens.size()), lens, seed++, c);
    Options g = c;
    g.max_seq_len_is_bound = true;
    g.max_seq_len_pad = 4096;
    g.prefix_on_device = true;
    check_attention({16, 8, 128, 16}, decode_q(lens.size()), lens, seed++, g);
  }
}

TEST_CASE("paged attention prefill: wgmma at head dim 64 (kAuto does not take it; run by name)", "[.][wgmma64]") {
  using vela::kernels::PrefillKernel;
  uint64_t seed = 1300;
  for (int32_t g : {1, 2, 4, 8}) check_prefill_kernel(PrefillKernel::kWgmma, g, 64, seed += 10);
}

TEST_CASE("paged attention: shapes outside the tuned kernels take the generic kernel", "[attention]") {
  // The reference models' head dims (8, 16) and others the tuned kernels refuse,
  // decode, prefill with prefix hits and mixed batches alike.
  uint64_t seed = 500;
  for (auto sh : {Shape{4, 2, 8, 16}, Shape{4, 2, 16, 16}, Shape{2, 1, 32, 32}, Shape{8, 8, 96, 16},
                  Shape{18, 2, 64, 16} /* GQA 9:1 */, Shape{4, 2, 64, 12} /* block 12 */}) {
    check_attention(sh, decode_q(6), {1, 17, 97, 1000, 300, 5}, seed++);
    check_attention(sh, {1, 7, 33, 1, 150}, {1, 40, 33, 600, 700}, seed++);
  }
}

TEST_CASE("paged attention fp32 (model.dtype float32): the generic kernel on every batch kind", "[attention][fp32]") {
  // fp32 always takes the generic kernel, whatever the shape: the tuned kernels'
  // shapes (Llama-8B, Qwen3-0.6B) as well as the reference models' (head dims 8, 16
  // and 64 with GQA 2), decode, prefill with and without prefix hits, mixed batches,
  // odd block sizes and a graph launch (max_seq_len a bound).
  uint64_t seed = 900;
  for (auto sh : {kLlama8B, Shape{16, 8, 128, 16}, Shape{4, 2, 8, 16}, Shape{4, 2, 16, 16}, Shape{2, 1, 64, 16},
                  Shape{18, 2, 64, 16}, Shape{4, 2, 64, 12}}) {
    check_attention<float>(sh, decode_q(7), {1, 17, 97, 1000, 4096, 300, 5}, seed++);
    check_attention<float>(sh, {1, 7, 33, 1, 150}, {1, 40, 33, 600, 700}, seed++);
    check_attention<float>(sh, {97}, {97}, seed++);
    check_attention<float>(sh, {64}, {64 + 777}, seed++);
  }
  Options peaky;
  peaky.q_range = 30.0f;
  check_attention<float>({8, 2, 128, 16}, decode_q(3), {5000, 64, 700}, seed++, peaky);
  Options graph;
  graph.max_seq_len_is_bound = true;
  graph.max_seq_len_pad = 131072 - 4096;
  check_attention<float>(kLlama8B, decode_q(5), {1, 300, 4096, 17, 2000}, seed++, graph);
  check_attention<float>(kLlama8B, decode_q(1), {32768}, seed++);
}

TEST_CASE("paged attention rejects what no kernel supports", "[attention]") {
  vela::kernels::PagedAttentionParams<vela::kernels::bf16> p;
  p.num_seqs = 1;
  p.num_tokens = 1;
  p.num_q_heads = 8;
  p.num_kv_heads = 8;
  p.block_size = 16;
  p.max_query_len = 1;
  p.head_dim = 512;  // over the generic kernel's 256
  REQUIRE(vela::kernels::paged_attention(p, nullptr) == cudaErrorInvalidValue);
  p.head_dim = 96;   // generic, but no buffers
  REQUIRE(vela::kernels::paged_attention(p, nullptr) == cudaErrorInvalidValue);
  p.head_dim = 128;
  p.num_q_heads = 12;  // not a multiple of the kv heads
  REQUIRE(vela::kernels::paged_attention(p, nullptr) == cudaErrorInvalidValue);
  vela::kernels::PagedAttentionParams<float> f;  // fp32: the generic kernel's limits
  f.num_seqs = 1;
  f.num_tokens = 1;
  f.num_q_heads = 8;
  f.num_kv_heads = 8;
  f.block_size = 16;
  f.max_query_len = 1;
  f.head_dim = 512;
  REQUIRE(vela::kernels::paged_attention(f, nullptr) == cudaErrorInvalidValue);
  f.head_dim = 128;  // no buffers
  REQUIRE(vela::kernels::paged_attention(f, nullptr) == cudaErrorInvalidValue);
}

TEST_CASE("paged attention decode as captured in a CUDA graph: splits sized from max_model_len, per sequence",
          "[attention][decode][graphs]") {
  // max_seq_len = 131072 (Llama-3.1's max_model_len) whatever the contexts: the grid
  // has as many splits as that bound allows; a sequence under 256 keys takes one
  // split and writes its output directly (the combine skips it), a longer one spreads
  // over several; the blocks past its keys exit.
  Options graph;
  graph.max_seq_len_is_bound = true;
  uint64_t seed = 300;
  for (int32_t ctx : {1, 17, 255, 256, 257, 511, 1000, 4096, 32768}) {
    graph.max_seq_len_pad = 131072 - ctx;
    check_attention(kLlama8B, decode_q(1), {ctx}, seed++, graph);
  }
  const std::vector<int32_t> mixed = {1, 300, 4096, 17, 32768, 256, 999, 2, 1, 5000, 64, 128, 20000, 3, 1, 257, 700};
  for (size_t batch : {size_t(3), size_t(5), size_t(17)}) {
    std::vector<int32_t> lens(mixed.begin(), mixed.begin() + ptrdiff_t(batch));
    graph.max_seq_len_pad = 131072 - *std::max_element(lens.begin(), lens.end());
    check_attention(kLlama8B, decode_q(batch), lens, seed++, graph);
    check_attention({16, 8, 128, 16}, decode_q(batch), lens, seed++, graph);  // Qwen3-0.6B
    check_attention({2, 1, 64, 16}, decode_q(batch), lens, seed++, graph);    // qwen3-tiny
  }
  // A bound too small to split (max_model_len < 512): one split reading seq_lens.
  graph.max_seq_len_pad = 0;
  check_attention(kLlama8B, decode_q(4), {1, 100, 300, 400}, seed++, graph);
  // Many sequences (no split at all, as at batch 256).
  std::vector<int32_t> many(64, 1000);
  graph.max_seq_len_pad = 4096 - 1000;
  check_attention(kLlama8B, decode_q(64), many, seed++, graph);
}

TEST_CASE("paged attention decode: CUDA-core and tensor-core kernels pinned, GQA 1/2/4/8, hd 64/128, blocks 16/32",
          "[attention][decode][graphs]") {
  // Each decode kernel on every shape whatever kAuto would pick, eager and as a graph
  // launch (max_seq_len a bound, per-sequence splits), contexts 1..32k.
  using vela::kernels::DecodeKernel;
  uint64_t seed = 700;
  const std::vector<int32_t> lens = {1, 15, 16, 17, 255, 257, 1000, 4096, 32768, 5000, 64};
  for (DecodeKernel kernel : {DecodeKernel::kCudaCores, DecodeKernel::kTensorCores})
    for (int32_t g : {1, 2, 4, 8})
      for (int32_t hd : {64, 128})
        for (int32_t bs : {16, 32}) {
          const Shape sh{2 * g, 2, hd, bs};
          Options eager;
          eager.decode_kernel = kernel;
          check_attention(sh, decode_q(lens.size()), lens, seed++, eager);
          check_attention(sh, decode_q(1), {int32_t(seed % 3000 + 1)}, seed, eager);  // one sequence: split-KV
          ++seed;
          Options graph = eager;
          graph.max_seq_len_is_bound = true;
          graph.max_seq_len_pad = 131072 - 32768;
          check_attention(sh, decode_q(lens.size()), lens, seed++, graph);
        }
  for (DecodeKernel kernel : {DecodeKernel::kCudaCores, DecodeKernel::kTensorCores}) {
    Options opt;
    opt.decode_kernel = kernel;
    check_attention({8, 1, 128, 8}, decode_q(5), {1, 8, 9, 555, 2049}, seed++, opt);  // block 8: chunks span blocks
    check_attention(kLlama8B, decode_q(64), std::vector<int32_t>(64, 4096), seed++, opt);  // the issue-14 case
    opt.q_range = 30.0f;  // peaky softmax: max tracking across chunks and warps
    check_attention({32, 8, 128, 16}, decode_q(3), {5000, 64, 700}, seed++, opt);
    opt.workspace = false;  // one split over every key
    check_attention({64, 8, 128, 32}, decode_q(2), {4096, 333}, seed++, opt);
  }
}

TEST_CASE("paged attention decode with a prefix shared by the batch: cascade (shared pass + own keys + combine)",
          "[attention][decode][cascade]") {
  // The P1 shape (Qwen3-0.6B, 2k shared system prompt, 256 sequences) and the 8B
  // shape; suffixes from empty (the prefix is all a sequence has: its own pass reads
  // nothing) to several splits long; both decode kernels under the shared pass; a
  // prefix that is not a multiple of the 64-key tile; peaky scores so the combine's
  // max tracking across the shared and own partials matters.
  using vela::kernels::DecodeKernel;
  uint64_t seed = 900;
  Options c;
  c.cascade = true;
  auto lens_after = [&](int32_t prefix, size_t n, int32_t max_own) {
    std::mt19937 rng{uint32_t(seed)};
    std::vector<int32_t> lens(n);
    for (auto& x : lens) x = prefix + int32_t(rng() % uint32_t(max_own + 1));
    lens[0] = prefix;        // nothing of its own
    lens[n - 1] = prefix + max_own;
    return lens;
  };
  c.shared_prefix_blocks = 128;  // 2048 keys, block 16
  check_attention({16, 8, 128, 16}, decode_q(256), lens_after(2048, 256, 264), seed++, c);
  check_attention({16, 8, 128, 16}, decode_q(8), lens_after(2048, 8, 3000), seed++, c);  // few: own keys split
  check_attention(kLlama8B, decode_q(64), lens_after(2048, 64, 500), seed++, c);
  for (DecodeKernel kernel : {DecodeKernel::kCudaCores, DecodeKernel::kTensorCores})
    for (int32_t g : {1, 2, 4, 8})
      for (int32_t hd : {64, 128}) {
        Options o = c;
        o.decode_kernel = kernel;
        o.shared_prefix_blocks = 21;  // 672 keys at block 32: the last shared tile is partial
        check_attention({2 * g, 2, hd, 32}, decode_q(12), lens_after(672, 12, 700), seed++, o);
      }
  Options peaky = c;
  peaky.q_range = 30.0f;
  peaky.shared_prefix_blocks = 40;
  check_attention({8, 2, 128, 16}, decode_q(16), lens_after(640, 16, 100), seed++, peaky);
  // The shared pass beside the own-key pass on a side stream: P1's shape, few
  // sequences (own keys split too), the 8B shape, the CUDA-core decode kernel.
  Options side = c;
  side.side_stream = true;
  check_attention({16, 8, 128, 16}, decode_q(256), lens_after(2048, 256, 264), seed++, side);
  check_attention({16, 8, 128, 16}, decode_q(8), lens_after(2048, 8, 3000), seed++, side);
  check_attention(kLlama8B, decode_q(64), lens_after(2048, 64, 500), seed++, side);
  side.decode_kernel = DecodeKernel::kCudaCores;
  side.shared_prefix_blocks = 21;
  check_attention({4, 2, 128, 32}, decode_q(12), lens_after(672, 12, 700), seed++, side);
  // Declined, same result: a graph-bounded launch, and no workspace.
  Options graph;
  graph.shared_prefix_blocks = 32;
  graph.max_seq_len_is_bound = true;
  graph.max_seq_len_pad = 8192;
  check_attention({16, 8, 128, 16}, decode_q(16), lens_after(512, 16, 50), seed++, graph);
  Options no_ws;
  no_ws.shared_prefix_blocks = 32;
  no_ws.workspace = false;
  check_attention({16, 8, 128, 16}, decode_q(16), lens_after(512, 16, 50), seed++, no_ws);
}

TEST_CASE("paged attention mixed batch led by decodes over a shared prefix: their cascade, then the rest",
          "[attention][prefill][cascade]") {
  // A P1 prefill step: the requests admitted earlier decode (first, as the scheduler
  // orders them) behind the shared 2k prompt while new ones prefill their own tokens
  // behind the same cached prompt; and the 8B shape with a partial last shared tile.
  uint64_t seed = 1500;
  auto batch = [&](int32_t prefix, int32_t decodes, int32_t chunks, int32_t chunk_len,
                   std::vector<int32_t>& q_lens, std::vector<int32_t>& lens) {
    std::mt19937 rng{uint32_t(seed)};
    q_lens.assign(size_t(decodes), 1);
    lens.clear();
    for (int32_t i = 0; i < decodes; ++i) lens.push_back(prefix + 1 + int32_t(rng() % 300));
    for (int32_t i = 0; i < chunks; ++i) {
      const int32_t q = chunk_len / 2 + int32_t(rng() % uint32_t(chunk_len));
      q_lens.push_back(q);
      lens.push_back(prefix + q);
    }
  };
  std::vector<int32_t> q_lens, lens;
  Options o;
  o.shared_prefix_blocks = 128;  // 2048 keys, block 16
  batch(2048, 65, 20, 125, q_lens, lens);
  o.shared_prefix_seqs = 65;
  check_attention({16, 8, 128, 16}, q_lens, lens, seed++, o);
  batch(2048, 8, 3, 300, q_lens, lens);
  o.shared_prefix_seqs = 8;
  check_attention({16, 8, 128, 16}, q_lens, lens, seed++, o);
  o.shared_prefix_blocks = 21;  // 672 keys at block 32
  batch(672, 12, 4, 64, q_lens, lens);
  o.shared_prefix_seqs = 12;
  check_attention({32, 8, 128, 32}, q_lens, lens, seed++, o);
  // A decode row after the chunks (not in the leading run) still reads its own keys.
  batch(2048, 9, 2, 100, q_lens, lens);
  q_lens.push_back(1);
  lens.push_back(2048 + 77);
  o.shared_prefix_blocks = 128;
  o.shared_prefix_seqs = 9;
  check_attention({16, 8, 128, 16}, q_lens, lens, seed++, o);
}

TEST_CASE("paged attention decode: a graph's cascade, the shared prefix's length read on the device",
          "[attention][decode][cascade]") {
  // What the cascade decode graphs launch (workers/decode_graphs.h): max_seq_len a
  // bound, the shared pass's splits sized by a bound, the step's prefix length read
  // on the device and spread over them; the combine counts what was written. P1's
  // shape (the bound's splits hold 2048 keys in a few), few sequences (own keys
  // split per sequence), a prefix of one tile, a length of 0 (every key a
  // sequence's own: the shared pass reads nothing), and both decode kernels.
  using vela::kernels::DecodeKernel;
  uint64_t seed = 1300;
  auto lens_after = [&](int32_t prefix, size_t n, int32_t max_own) {
    std::mt19937 rng{uint32_t(seed)};
    std::vector<int32_t> lens(n);
    for (auto& x : lens) x = prefix + 1 + int32_t(rng() % uint32_t(max_own));
    lens[n - 1] = prefix + max_own;
    return lens;
  };
  Options g;
  g.cascade = true;
  g.prefix_on_device = true;
  g.max_seq_len_is_bound = true;
  g.max_seq_len_pad = 4096;
  g.shared_prefix_blocks = 128;  // 2048 keys
  check_attention({16, 8, 128, 16}, decode_q(256), lens_after(2048, 256, 264), seed++, g);
  check_attention({16, 8, 128, 16}, decode_q(8), lens_after(2048, 8, 3000), seed++, g);
  check_attention(kLlama8B, decode_q(24), lens_after(2048, 24, 500), seed++, g);
  for (DecodeKernel kernel : {DecodeKernel::kCudaCores, DecodeKernel::kTensorCores})
    for (int32_t hd : {64, 128}) {
      Options o = g;
      o.decode_kernel = kernel;
      o.shared_prefix_blocks = 21;  // 672 keys at block 32
      check_attention({4, 2, hd, 32}, decode_q(12), lens_after(672, 12, 700), seed++, o);
      o.shared_prefix_blocks = 2;  // one 64-key tile
      check_attention({4, 2, hd, 32}, decode_q(12), lens_after(64, 12, 300), seed++, o);
    }
  Options zero = g;
  zero.shared_prefix_blocks = 32;
  zero.device_prefix_len = 0;  // the blocks are shared, but the step says no prefix
  check_attention({16, 8, 128, 16}, decode_q(16), lens_after(512, 16, 50), seed++, zero);
  // The same with the shared pass on a side stream (what the model's graphs capture).
  Options side = g;
  side.side_stream = true;
  check_attention({16, 8, 128, 16}, decode_q(256), lens_after(2048, 256, 264), seed++, side);
  side.shared_prefix_blocks = 32;
  side.device_prefix_len = 0;
  check_attention({16, 8, 128, 16}, decode_q(16), lens_after(512, 16, 50), seed++, side);
}
