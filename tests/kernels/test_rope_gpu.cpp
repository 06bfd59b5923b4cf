// RoPE against the CPU op, bf16 and fp32 elements: neox halves and interleaved pairs, q and k as head
// views inside fused qkv rows (v must stay untouched), separate contiguous q/k,
// and a misaligned base that forces the scalar path for vector-friendly shapes.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/elementwise.h"
#include "model/ops/cpu/cpu_ops.h"
#include "tests/kernels/gpu_test_util.h"

using namespace vela;
using namespace vela::testing;
namespace k = vela::kernels;

namespace {

constexpr int64_t kMaxPositions = 1024;

// [max_positions, hd]: cos(p * f_i) in [:hd/2], sin in [hd/2:], f_i = 10000^(-2i/hd).
std::vector<float> cos_sin_table(int64_t hd) {
  const int64_t half = hd / 2;
  std::vector<float> cs(size_t(kMaxPositions * hd), 0.0f);
  for (int64_t p = 0; p < kMaxPositions; ++p)
    for (int64_t i = 0; i < half; ++i) {
      double angle = double(p) * std::pow(10000.0, -2.0 * double(i) / double(hd));
      cs[size_t(p * hd + i)] = float(std::cos(angle));
      cs[size_t(p * hd + half + i)] = float(std::sin(angle));
    }
  return cs;
}

enum class Layout { kFusedQkv, kFusedQkvMisaligned, kSeparate };

}  // namespace

TEMPLATE_TEST_CASE("rope: neox and interleaved over q/k head views", "[rope]", k::bf16, float) {
  using T = TestType;
  struct Shape { int64_t nq, nk, hd; };
  // hd 24: interleaved vector path but scalar neox (half 12); hd 18: scalar both ways.
  for (Shape s : {Shape{8, 1, 128}, Shape{32, 8, 128}, Shape{4, 2, 64}, Shape{2, 1, 24}, Shape{3, 1, 18}})
    for (int64_t tokens : {1, 3, 257})
      for (bool interleaved : {false, true})
        for (Layout layout : {Layout::kFusedQkv, Layout::kFusedQkvMisaligned, Layout::kSeparate}) {
          INFO("nq=" << s.nq << " nk=" << s.nk << " hd=" << s.hd << " T=" << tokens << " interleaved=" << interleaved
                     << " layout=" << int(layout));
          std::mt19937_64 rng(uint64_t(s.nq * 7919 + s.hd * 31 + tokens * 3 + interleaved) * 5 + uint64_t(layout));
          std::vector<int32_t> pos(static_cast<size_t>(tokens));
          std::uniform_int_distribution<int32_t> pick(0, kMaxPositions - 1);
          for (int32_t& p : pos) p = pick(rng);
          std::vector<float> cs = cos_sin_table(s.hd);
          Tensor pos_t = Tensor::from_blob(pos.data(), {tokens}, DType::kI32);
          Tensor cs_t = Tensor::from_blob(cs.data(), {kMaxPositions, s.hd}, DType::kF32);

          // One buffer holds q and k: fused rows [q | k | v] (from `base`), or q rows then k rows.
          const bool fused = layout != Layout::kSeparate;
          const int64_t base = layout == Layout::kFusedQkvMisaligned ? 1 : 0;
          const int64_t q_stride = fused ? (s.nq + 2 * s.nk) * s.hd : s.nq * s.hd;
          const int64_t k_stride = fused ? q_stride : s.nk * s.hd;
          const int64_t q_off = base, k_off = fused ? base + s.nq * s.hd : tokens * q_stride;
          const int64_t total = fused ? base + tokens * q_stride : tokens * (q_stride + k_stride);
          ElemData<T> buf = random_elems<T>(size_t(total), -4.0f, 4.0f, rng);

          std::vector<float> want = buf.f32;
          auto view = [&](int64_t off, int64_t stride, int64_t heads) {
            Tensor rows = Tensor::from_blob(want.data() + off, {tokens, stride}, DType::kF32);
            Tensor part = rows.narrow(1, 0, heads * s.hd);
            return part.unflatten_last(heads, s.hd);
          };
          Tensor qv = view(q_off, q_stride, s.nq), kv = view(k_off, k_stride, s.nk);
          ops::cpu::rope(pos_t, qv, kv, cs_t, interleaved);

          DeviceArray<HostOf<T>> dbuf(buf.bits);
          DeviceArray<int32_t> dpos(pos);
          DeviceArray<float> dcs(cs);
          k::RopeParams<T> p;
          p.positions = dpos.get();
          p.q = elems<T>(dbuf) + q_off;
          p.k = elems<T>(dbuf) + k_off;
          p.cos_sin = dcs.get();
          p.num_tokens = tokens;
          p.num_q_heads = s.nq;
          p.num_kv_heads = s.nk;
          p.head_dim = s.hd;
          p.q_token_stride = q_stride;
          p.k_token_stride = k_stride;
          p.interleaved = interleaved;
          LAUNCH_OK(k::rope(p, nullptr));
          require_close(upcast(dbuf.download()), want, kOutTol<T>, "q, k (rotated) and the rest (untouched)");
        }
}
