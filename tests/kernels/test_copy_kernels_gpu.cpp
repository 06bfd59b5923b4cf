// The copying kernels (embedding, gather_rows, reshape_and_cache) against the CPU
// ops, for bf16 and fp32 elements: bit-for-bit, as they only move values. Also: every launcher accepts
// zero tokens without launching.
#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/elementwise.h"
#include "model/ops/cpu/cpu_ops.h"
#include "tests/kernels/gpu_test_util.h"

using namespace vela;
using namespace vela::testing;
namespace k = vela::kernels;

TEMPLATE_TEST_CASE("embedding of a vocab shard: rows in the shard copied, others zero", "[embedding]", k::bf16, float) {
  using T = TestType;
  const int64_t num_rows = 50, vocab_start = 20;  // the shard holds ids [20, 70)
  for (int64_t hidden : {17, 97, 1000, 4096})
    for (int64_t tokens : {1, 3, 257}) {
      INFO("hidden=" << hidden << " T=" << tokens);
      std::mt19937_64 rng(uint64_t(hidden * 1000003 + tokens));
      ElemData<T> table = random_elems<T>(size_t(num_rows * hidden), -1.0f, 1.0f, rng);
      std::vector<int32_t> ids(static_cast<size_t>(tokens));
      std::uniform_int_distribution<int32_t> pick(-5, 90);
      for (int32_t& id : ids) id = pick(rng);
      if (tokens > 1) ids[0] = int32_t(vocab_start), ids[1] = int32_t(vocab_start + num_rows - 1);  // both edges

      std::vector<float> want(size_t(tokens * hidden));
      Tensor want_t = Tensor::from_blob(want.data(), {tokens, hidden}, DType::kF32);
      ops::cpu::embedding(Tensor::from_blob(ids.data(), {tokens}, DType::kI32),
                          Tensor::from_blob(table.f32.data(), {num_rows, hidden}, DType::kF32), vocab_start, want_t);

      DeviceArray<HostOf<T>> dtable(table.bits), dout(want.size());
      DeviceArray<int32_t> dids(ids);
      dout.poison();
      k::EmbeddingParams<T> p;
      p.ids = dids.get();
      p.table = elems<T>(dtable);
      p.out = elems<T>(dout);
      p.num_tokens = tokens;
      p.num_rows = num_rows;
      p.hidden = hidden;
      p.vocab_start = vocab_start;
      LAUNCH_OK(k::embedding(p, nullptr));
      require_equal_bits(dout.download(), to_elems<T>(want), "out");
    }
}

TEMPLATE_TEST_CASE("gather_rows from a row-strided view", "[gather_rows]", k::bf16, float) {
  using T = TestType;
  for (int64_t dim : {17, 97, 1000, 4096})
    for (int64_t pad : {0, 8, 3})
      for (int64_t count : {1, 5, 64}) {
        const int64_t tokens = 40, stride = dim + pad;
        INFO("D=" << dim << " x_token_stride=D+" << pad << " rows=" << count);
        std::mt19937_64 rng(uint64_t(dim * 1000003 + pad * 101 + count));
        ElemData<T> x = random_elems<T>(size_t(tokens * stride), -1.0f, 1.0f, rng);
        std::vector<int32_t> rows(static_cast<size_t>(count));
        std::uniform_int_distribution<int32_t> pick(0, int32_t(tokens - 1));
        for (int32_t& r : rows) r = pick(rng);  // repeats allowed

        std::vector<float> want(size_t(count * dim));
        Tensor want_t = Tensor::from_blob(want.data(), {count, dim}, DType::kF32);
        Tensor xv = Tensor::from_blob(x.f32.data(), {tokens, stride}, DType::kF32).narrow(1, 0, dim);
        ops::cpu::gather_rows(xv, Tensor::from_blob(rows.data(), {count}, DType::kI32), want_t);

        DeviceArray<HostOf<T>> dx(x.bits), dout(want.size());
        DeviceArray<int32_t> drows(rows);
        dout.poison();
        k::GatherRowsParams<T> p;
        p.x = elems<T>(dx);
        p.rows = drows.get();
        p.out = elems<T>(dout);
        p.num_rows = count;
        p.dim = dim;
        p.x_token_stride = stride;
        LAUNCH_OK(k::gather_rows(p, nullptr));
        require_equal_bits(dout.download(), to_elems<T>(want), "out");
      }
}

TEMPLATE_TEST_CASE("reshape_and_cache writes k/v views into their slots and nothing else", "[reshape_and_cache]", k::bf16, float) {
  using T = TestType;
  struct Shape { int64_t nk, hd; };
  for (int64_t block_size : {16, 32})
    for (Shape s : {Shape{8, 128}, Shape{1, 64}, Shape{2, 17}})
      for (int64_t tokens : {1, 3, 257}) {
        INFO("block_size=" << block_size << " nk=" << s.nk << " hd=" << s.hd << " T=" << tokens);
        std::mt19937_64 rng(uint64_t(block_size * 1000003 + s.nk * 7919 + s.hd * 31 + tokens));
        const int64_t nq = 2 * s.nk, width = (nq + 2 * s.nk) * s.hd;  // fused qkv rows
        const int64_t num_blocks = tokens / block_size + 4, num_slots = num_blocks * block_size;
        const int64_t cache_row = s.nk * s.hd;
        ElemData<T> qkv = random_elems<T>(size_t(tokens * width), -1.0f, 1.0f, rng);
        ElemData<T> kc = random_elems<T>(size_t(num_slots * cache_row), -1.0f, 1.0f, rng);  // previous contents
        ElemData<T> vc = random_elems<T>(size_t(num_slots * cache_row), -1.0f, 1.0f, rng);

        // Distinct slots (a shuffled prefix of all slots), about one token in five skipped.
        std::vector<int64_t> slots(static_cast<size_t>(num_slots));
        std::iota(slots.begin(), slots.end(), int64_t{0});
        std::shuffle(slots.begin(), slots.end(), rng);
        slots.resize(size_t(tokens));
        for (int64_t& slot : slots)
          if (rng() % 5 == 0) slot = -1;

        std::vector<float> want_k = kc.f32, want_v = vc.f32;
        LayerKVCache cache{Tensor::from_blob(want_k.data(), {num_blocks, block_size, s.nk, s.hd}, DType::kF32),
                           Tensor::from_blob(want_v.data(), {num_blocks, block_size, s.nk, s.hd}, DType::kF32)};
        ForwardBatch batch;
        batch.slot_mapping = Tensor::from_blob(slots.data(), {tokens}, DType::kI64);
        batch.num_tokens = int32_t(tokens);
        Tensor rows = Tensor::from_blob(qkv.f32.data(), {tokens, width}, DType::kF32);
        Tensor kv = rows.narrow(1, nq * s.hd, cache_row).unflatten_last(s.nk, s.hd);
        Tensor vv = rows.narrow(1, (nq + s.nk) * s.hd, cache_row).unflatten_last(s.nk, s.hd);
        ops::cpu::reshape_and_cache(kv, vv, cache, batch);

        DeviceArray<HostOf<T>> dqkv(qkv.bits), dkc(kc.bits), dvc(vc.bits);
        DeviceArray<int64_t> dslots(slots);
        k::ReshapeAndCacheParams<T> p;
        p.k = elems<T>(dqkv) + nq * s.hd;
        p.v = elems<T>(dqkv) + (nq + s.nk) * s.hd;
        p.k_token_stride = width;
        p.v_token_stride = width;
        p.k_cache = elems<T>(dkc);
        p.v_cache = elems<T>(dvc);
        p.slot_mapping = dslots.get();
        p.num_tokens = tokens;
        p.num_kv_heads = s.nk;
        p.head_dim = s.hd;
        LAUNCH_OK(k::reshape_and_cache(p, nullptr));
        require_equal_bits(dkc.download(), to_elems<T>(want_k), "k cache");
        require_equal_bits(dvc.download(), to_elems<T>(want_v), "v cache");
      }
}

TEST_CASE("widen_bf16: bf16 weights to fp32 exactly", "[widen]") {
  // Every bf16 value is an fp32 value: the widening is exact, bit for bit. Odd sizes
  // and an offset base take the scalar path; the others the vector one.
  for (int64_t n : {1, 17, 97, 1000, 4096, 1 << 20})
    for (int64_t offset : {0, 1}) {
      INFO("n=" << n << " offset=" << offset);
      std::mt19937_64 rng(uint64_t(n * 31 + offset));
      Bf16Data x = random_bf16(size_t(n + offset), -100.0f, 100.0f, rng);
      DeviceArray<uint16_t> din(x.bits);
      DeviceArray<float> dout(size_t(n + offset));
      dout.poison();
      LAUNCH_OK(k::widen_bf16(din.bf16() + offset, dout.get() + offset, n, nullptr));
      std::vector<float> got = dout.download(), want(x.f32.begin() + offset, x.f32.end());
      got.erase(got.begin(), got.begin() + offset);
      require_equal_bits(got, want, "widened");
    }
}

TEMPLATE_TEST_CASE("launchers accept zero tokens without launching", "[elementwise]", k::bf16, float) {
  using T = TestType;
  // Null pointers everywhere: a launch that touched them would fault.
  CUDA_OK(k::embedding(k::EmbeddingParams<T>{.hidden = 64}, nullptr));
  CUDA_OK(k::rms_norm(k::RmsNormParams<T>{.dim = 64, .x_token_stride = 64, .out_token_stride = 64}, nullptr));
  CUDA_OK(k::add_rms_norm(k::AddRmsNormParams<T>{.dim = 64, .x_token_stride = 64}, nullptr));
  CUDA_OK(k::rope(k::RopeParams<T>{.num_q_heads = 8, .num_kv_heads = 1, .head_dim = 128}, nullptr));
  CUDA_OK(k::silu_and_mul(k::SiluAndMulParams<T>{.intermediate = 64}, nullptr));
  CUDA_OK(k::reshape_and_cache(k::ReshapeAndCacheParams<T>{.num_kv_heads = 1, .head_dim = 64}, nullptr));
  CUDA_OK(k::gather_rows(k::GatherRowsParams<T>{.dim = 64}, nullptr));
  CUDA_OK(k::dummy_fill(k::DummyFillParams<T>{.dim_size = 10, .length = 0, .inner = 8}, nullptr));
  CUDA_OK(k::widen_bf16(nullptr, nullptr, 0, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
}
