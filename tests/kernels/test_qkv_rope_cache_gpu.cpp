// The fused attention prologue (q/k RMSNorm + RoPE + cache write, one kernel)
// against the CPU ops it replaces, run one after another in fp32 on the same bf16
// values: Qwen3-like (q/k norm) and Llama-like (none) head shapes, neox and
// interleaved RoPE, tokens whose slot is -1 (their k/v must not be written), and a
// cache pre-filled with random values that every unwritten slot must keep.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "model/ops/cpu/cpu_ops.h"
#include "tests/kernels/gpu_test_util.h"

using namespace vela;
using namespace vela::testing;
namespace k = vela::kernels;

namespace {

// cos then sin of position p and frequency i = base^(-2i / hd), [positions, hd].
std::vector<float> rope_table(int64_t positions, int64_t hd, double base) {
  const int64_t half = hd / 2;
  std::vector<float> cs(size_t(positions * hd));
  for (int64_t p = 0; p < positions; ++p)
    for (int64_t i = 0; i < half; ++i) {
      const double a = double(p) * std::pow(base, -2.0 * double(i) / double(hd));
      cs[size_t(p * hd + i)] = float(std::cos(a));
      cs[size_t(p * hd + half + i)] = float(std::sin(a));
    }
  return cs;
}

struct Heads {
  int64_t nq, nk, hd;
};

// qkv_rope_cache's parameters for q|k|v rows of `width` at qkv (no q/k norm set).
k::QkvRopeCacheParams prologue_params(k::bf16* qkv, int64_t width, Heads s, int64_t tokens, const int32_t* pos,
                                      const float* cos_sin, bool interleaved, k::bf16* k_cache, k::bf16* v_cache,
                                      const int64_t* slots) {
  k::QkvRopeCacheParams p;
  p.q = qkv;
  p.k = qkv + s.nq * s.hd;
  p.v = qkv + (s.nq + s.nk) * s.hd;
  p.q_token_stride = p.k_token_stride = p.v_token_stride = width;
  p.positions = pos;
  p.cos_sin = cos_sin;
  p.interleaved = interleaved;
  p.k_cache = k_cache;
  p.v_cache = v_cache;
  p.slot_mapping = slots;
  p.num_tokens = tokens;
  p.num_q_heads = s.nq;
  p.num_kv_heads = s.nk;
  p.head_dim = s.hd;
  return p;
}

}  // namespace

TEST_CASE("qkv_rope_cache: fused norm + rope + cache write matches the CPU ops", "[qkv_rope_cache]") {
  constexpr int64_t kMaxPositions = 4096, kBlockSize = 16;
  const float eps = 1e-6f;
  for (Heads s : {Heads{16, 8, 128}, Heads{32, 8, 128}, Heads{4, 2, 64}, Heads{8, 1, 256}, Heads{2, 1, 64}})
    for (int64_t tokens : {1, 5, 300})
      for (bool norm : {true, false})
        for (bool interleaved : {false, true}) {
          INFO("nq=" << s.nq << " nk=" << s.nk << " hd=" << s.hd << " T=" << tokens << " norm=" << norm
                     << " interleaved=" << interleaved);
          std::mt19937_64 rng(std::random_device{}());
          const int64_t width = (s.nq + 2 * s.nk) * s.hd;
          Bf16Data qkv = random_bf16(size_t(tokens * width), -3.0f, 3.0f, rng);
          Bf16Data wq = random_bf16(size_t(s.hd), 0.5f, 1.5f, rng), wk = random_bf16(size_t(s.hd), 0.5f, 1.5f, rng);
          std::vector<int32_t> pos(static_cast<size_t>(tokens));
          std::uniform_int_distribution<int32_t> pick(0, kMaxPositions - 1);
          for (int32_t& p : pos) p = pick(rng);
          std::vector<float> cs = rope_table(kMaxPositions, s.hd, 1e6);
          // Slots: a shuffled subset of a larger cache; every 7th token is not written.
          const int64_t blocks = (tokens + 40) / kBlockSize + 2, slots = blocks * kBlockSize;
          std::vector<int64_t> all(static_cast<size_t>(slots));
          std::iota(all.begin(), all.end(), 0);
          std::shuffle(all.begin(), all.end(), rng);
          std::vector<int64_t> slot(all.begin(), all.begin() + tokens);
          for (int64_t t = 3; t < tokens; t += 7) slot[size_t(t)] = -1;
          Bf16Data kc = random_bf16(size_t(slots * s.nk * s.hd), -1.0f, 1.0f, rng);
          Bf16Data vc = random_bf16(size_t(slots * s.nk * s.hd), -1.0f, 1.0f, rng);

          // CPU: the ops the fused kernel replaces, in fp32.
          std::vector<float> want = qkv.f32, want_k = kc.f32, want_v = vc.f32;
          Tensor rows = Tensor::from_blob(want.data(), {tokens, width}, DType::kF32);
          Tensor q = rows.narrow(1, 0, s.nq * s.hd).unflatten_last(s.nq, s.hd);
          Tensor kk = rows.narrow(1, s.nq * s.hd, s.nk * s.hd).unflatten_last(s.nk, s.hd);
          Tensor v = rows.narrow(1, (s.nq + s.nk) * s.hd, s.nk * s.hd).unflatten_last(s.nk, s.hd);
          Tensor wqt = Tensor::from_blob(wq.f32.data(), {s.hd}, DType::kF32);
          Tensor wkt = Tensor::from_blob(wk.f32.data(), {s.hd}, DType::kF32);
          Tensor pos_t = Tensor::from_blob(pos.data(), {tokens}, DType::kI32);
          Tensor cs_t = Tensor::from_blob(cs.data(), {kMaxPositions, s.hd}, DType::kF32);
          if (norm) {
            ops::cpu::rms_norm(q, wqt, eps, q);
            ops::cpu::rms_norm(kk, wkt, eps, kk);
          }
          ops::cpu::rope(pos_t, q, kk, cs_t, interleaved);
          LayerKVCache cache{Tensor::from_blob(want_k.data(), {blocks, kBlockSize, s.nk, s.hd}, DType::kF32),
                             Tensor::from_blob(want_v.data(), {blocks, kBlockSize, s.nk, s.hd}, DType::kF32)};
          ForwardBatch batch;
          batch.num_tokens = int32_t(tokens);
          batch.slot_mapping = Tensor::from_blob(slot.data(), {tokens}, DType::kI64);
          ops::cpu::reshape_and_cache(kk, v, cache, batch);

          DeviceArray<uint16_t> dqkv(qkv.bits), dwq(wq.bits), dwk(wk.bits), dkc(kc.bits), dvc(vc.bits);
          DeviceArray<int32_t> dpos(pos);
          DeviceArray<float> dcs(cs);
          DeviceArray<int64_t> dslot(slot);
          k::QkvRopeCacheParams p = prologue_params(dqkv.bf16(), width, s, tokens, dpos.get(), dcs.get(), interleaved,
                                                    dkc.bf16(), dvc.bf16(), dslot.get());
          p.q_norm = norm ? dwq.bf16() : nullptr;
          p.k_norm = norm ? dwk.bf16() : nullptr;
          p.eps = eps;
          REQUIRE(k::qkv_rope_cache_supported(s.hd, {p.q, p.k, p.v, p.k_cache, p.v_cache}, {width}));
          LAUNCH_OK(k::qkv_rope_cache(p, nullptr));
          // q rotated in place; k and v rows are only read (their contents are not compared).
          std::vector<float> got = upcast(dqkv.download()), got_q, want_q;
          for (int64_t t = 0; t < tokens; ++t)
            for (int64_t i = 0; i < s.nq * s.hd; ++i) {
              got_q.push_back(got[size_t(t * width + i)]);
              want_q.push_back(want[size_t(t * width + i)]);
            }
          require_close(got_q, want_q, kBf16Out, "q (normed, rotated, in place)");
          require_close(upcast(dkc.download()), want_k, kBf16Out, "k cache (written slots rotated, the rest kept)");
          require_close(upcast(dvc.download()), want_v, kBf16Out, "v cache (written slots copied, the rest kept)");
        }
}

// The qkv projection's GEMV with the prologue in its epilogue (GemmArgs::qkv, the
// decode step of a model without q/k norm at 1-2 rows) against the two kernels it
// replaces, run on the same inputs: the plain GEMV (or its norm prologue), then
// qkv_rope_cache. The fused kernel accumulates each row as the plain GEMV does and
// rounds the projection to bf16 before the same fp32 RoPE, so the outputs agree
// bit for bit but where the compiler contracted x1 c - x2 s differently in the two
// kernels: then one bf16 ulp apart, which just above a power of two is 2^-7 of the
// value (seen on the H200: -0.433594 vs -0.435547, 1 element of 6,144), so the
// tolerance is one ulp, while a wrong head, pair or position is off by far more.
// Every cache slot not named is kept.
TEST_CASE("qkv GEMV with the attention prologue in its epilogue matches gemv + qkv_rope_cache", "[qkv_rope_cache][gemv]") {
  constexpr int64_t kMaxPositions = 8192, kBlockSize = 16;
  const float eps = 1e-5f;
  struct Shape {
    Heads h;
    int64_t k;
  };
  for (auto [s, kdim] : {Shape{{32, 8, 128}, 4096}, Shape{{14, 2, 64}, 896}, Shape{{4, 1, 256}, 512}})
    for (int64_t m = 1; m <= 4; ++m)
      for (bool norm : {false, true})
        for (bool bias : {false, true})
          for (bool interleaved : {false, true}) {
            if (norm && m > 2) continue;  // the norm prologue's rows
            INFO("nq=" << s.nq << " nk=" << s.nk << " hd=" << s.hd << " k=" << kdim << " m=" << m << " norm=" << norm
                       << " bias=" << bias << " interleaved=" << interleaved);
            std::mt19937_64 rng(std::random_device{}());
            const int64_t n = (s.nq + 2 * s.nk) * s.hd;
            Bf16Data x = random_bf16(size_t(m * kdim), -1.0f, 1.0f, rng);
            Bf16Data w = random_bf16(size_t(n * kdim), -0.05f, 0.05f, rng);
            Bf16Data b = random_bf16(size_t(n), -0.5f, 0.5f, rng);
            Bf16Data nw = random_bf16(size_t(kdim), 0.5f, 1.5f, rng);
            std::vector<float> residual(size_t(m * kdim));
            std::uniform_real_distribution<float> rd(-2.0f, 2.0f);
            for (float& r : residual) r = rd(rng);
            std::vector<int32_t> pos(static_cast<size_t>(m));
            std::uniform_int_distribution<int32_t> pick(0, kMaxPositions - 1);
            for (int32_t& p : pos) p = pick(rng);
            const std::vector<float> cs = rope_table(kMaxPositions, s.hd, 5e5);
            const int64_t blocks = 4, slots = blocks * kBlockSize;
            std::vector<int64_t> all(static_cast<size_t>(slots));
            std::iota(all.begin(), all.end(), 0);
            std::shuffle(all.begin(), all.end(), rng);
            std::vector<int64_t> slot(all.begin(), all.begin() + m);
            if (m >= 2) slot[1] = -1;  // a padding row: its k / v are not written
            Bf16Data kc = random_bf16(size_t(slots * s.nk * s.hd), -1.0f, 1.0f, rng);
            Bf16Data vc = random_bf16(size_t(slots * s.nk * s.hd), -1.0f, 1.0f, rng);

            DeviceArray<uint16_t> dx(x.bits), dw(w.bits), db(b.bits), dnw(nw.bits);
            DeviceArray<float> dres(residual), dcs(cs);
            DeviceArray<int32_t> dpos(pos);
            DeviceArray<int64_t> dslot(slot);
            DeviceArray<uint16_t> out_a(size_t(m * n)), out_b(size_t(m * n));
            DeviceArray<uint16_t> kc_a(kc.bits), vc_a(vc.bits), kc_b(kc.bits), vc_b(vc.bits);
            out_a.poison();
            out_b.poison();
            auto args = [&](DeviceArray<uint16_t>& out) {
              k::GemmArgs a;
              a.x = norm ? nullptr : dx.bf16();
              a.x_row_stride = norm ? 0 : kdim;
              a.w = dw.bf16();
              a.bias = bias ? db.bf16() : nullptr;
              a.out = out.bf16();
              a.out_row_stride = n;
              a.m = m;
              a.n = n;
              a.k = kdim;
              if (norm) {
                a.norm_residual = dres.get();
                a.norm_weight = dnw.bf16();
                a.norm_eps = eps;
              }
              return a;
            };
            // The two kernels.
            k::GemmArgs plain = args(out_a);
            REQUIRE(k::gemv_supported(plain));
            LAUNCH_OK(k::gemv(plain, nullptr));
            const k::QkvRopeCacheParams p = prologue_params(out_a.bf16(), n, s, m, dpos.get(), dcs.get(), interleaved,
                                                            kc_a.bf16(), vc_a.bf16(), dslot.get());
            LAUNCH_OK(k::qkv_rope_cache(p, nullptr));
            // The fused one.
            k::GemmArgs fused = args(out_b);
            fused.qkv.positions = dpos.get();
            fused.qkv.cos_sin = dcs.get();
            fused.qkv.slot_mapping = dslot.get();
            fused.qkv.k_cache = kc_b.bf16();
            fused.qkv.v_cache = vc_b.bf16();
            fused.qkv.num_q_heads = int32_t(s.nq);
            fused.qkv.num_kv_heads = int32_t(s.nk);
            fused.qkv.head_dim = int32_t(s.hd);
            fused.qkv.interleaved = interleaved;
            REQUIRE(k::gemv_supported(fused));
            LAUNCH_OK(k::gemv(fused, nullptr));
            // q rotated in place and k / v as projected (the whole rows), the caches.
            constexpr Tolerance kOneUlp{1.0 / 128.0, 1e-5};
            require_close(upcast(out_b.download()), upcast(out_a.download()), kOneUlp, "qkv rows");
            require_close(upcast(kc_b.download()), upcast(kc_a.download()), kOneUlp, "k cache");
            require_close(upcast(vc_b.download()), upcast(vc_a.download()), kOneUlp, "v cache");
            // And the padding row left its slot's neighbours alone: the caches differ
            // from what they were only at the slots named.
            const std::vector<float> kc_now = upcast(kc_b.download());
            size_t changed = 0;
            for (size_t i = 0; i < kc_now.size(); ++i) changed += kc_now[i] != kc.f32[i];
            const int64_t written = std::count_if(slot.begin(), slot.end(), [](int64_t v) { return v >= 0; });
            CHECK(changed <= size_t(written * s.nk * s.hd));
            CHECK(changed > 0);
          }
  // What the epilogue cannot take is refused, not run.
  k::GemmArgs bad;
  bad.x = reinterpret_cast<const void*>(uintptr_t(256));
  bad.x_row_stride = 64;
  bad.w = bad.x;
  bad.out = reinterpret_cast<void*>(uintptr_t(256));
  bad.m = 1;
  bad.k = 64;
  bad.qkv.positions = reinterpret_cast<const int32_t*>(uintptr_t(256));
  bad.qkv.cos_sin = reinterpret_cast<const float*>(uintptr_t(256));
  bad.qkv.slot_mapping = reinterpret_cast<const int64_t*>(uintptr_t(256));
  bad.qkv.k_cache = bad.qkv.v_cache = bad.out;
  bad.qkv.num_q_heads = 2;
  bad.qkv.num_kv_heads = 1;
  bad.qkv.head_dim = 64;
  bad.n = 4 * 64;
  bad.out_row_stride = bad.n;
  CHECK(k::gemv_supported(bad));
  bad.n = 3 * 64;  // not (nq + 2 nk) hd
  CHECK_FALSE(k::gemv_supported(bad));
  bad.n = 4 * 64;
  bad.out_f32 = true;
  CHECK_FALSE(k::gemv_supported(bad));
}
