// kernels::Gemm (cuBLASLt) against an fp64 host reference over the same bf16 values,
// and over fp32 values (model.dtype float32: fp32 x, w, bias and out).
//
// Tolerance, per checked entry (ref computed in fp64 from the bf16 inputs):
//   |got - ref| <= 1e-4 * (sum_k |x_k w_k| + |bias|)  +  (bf16 out ? 2^-8 |ref| : 0)
// - fp32 accumulation of K products: the worst-case bound is K·2^-24·sum|x w|
//   (2.4e-4 at K = 4096), the expected error is ~sqrt(K)·2^-24 (4e-6); tensor-core
//   accumulation is fp32 with some truncation inside an MMA, so 1e-4 leaves 25x room
//   over the expected error while any layout bug (a wrong stride, transpose, missing
//   k-slab or bias) moves entries by O(|ref|) ~ sqrt(sum x²w²), i.e. >> 1e-4·sum|x w|.
// - bf16 output: round-to-nearest costs at most 2^-9 relative; we allow 2^-8.
// - fp32 inputs: the same bound (the products are exact in fp64 and carry one fp32
//   rounding each, 2^-24, far inside 1e-4). That TF32 is not used (10 mantissa bits,
//   2^-11 per product) is checked apart, where fp32 is exact and TF32 cannot be.
// Outputs are poisoned with NaN (0xFF bytes) first, so an unwritten entry fails, and
// strided outputs check that the padding columns stay poisoned.
#include <catch2/catch.hpp>
#include <cuda_runtime_api.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/gemm.h"
#include "tests/kernels/gpu_test_util.h"

using vela::kernels::bf16;
using vela::kernels::Gemm;
using vela::kernels::GemmArgs;

namespace {

struct Shape {
  int64_t m, n, k;
  int64_t x_pad;    // x row stride = k + x_pad
  int64_t out_pad;  // out row stride = n + out_pad
  bool out_f32;
  int64_t x_offset = 0;  // elements before x's first row (a view not 256-byte aligned)
  bool in_f32 = false;   // fp32 x, w and bias (then out_f32 too) instead of bf16
};

// silu_mul (GEMV only, no bias): w has 2n rows and out[i, j] = silu(g) * u with
// g = x_i . w_j and u = x_i . w_(n+j); the tolerance carries each dot product's
// through the activation (|d silu(g)/dg| <= 1.1).
// skinny_splits >= 0: the decode-batch wgmma kernel called directly with that k split
// (0: its own pick) instead of Gemm::run.
void check_gemm(Gemm& gemm, const Shape& s, bool with_bias, uint64_t seed, bool gemv = false, bool silu_mul = false,
                int skinny_splits = -1) {
  INFO("silu_mul=" << silu_mul << " ");
  INFO("m=" << s.m << " x_offset=" << s.x_offset << " n=" << s.n << " k=" << s.k << " x_pad=" << s.x_pad << " out_pad=" << s.out_pad
            << " out_f32=" << s.out_f32 << " in_f32=" << s.in_f32 << " bias=" << with_bias
            << (gemv ? " (gemv)" : skinny_splits >= 0 ? " (skinny, splits " + std::to_string(skinny_splits) + ")" : " (Gemm::run)"));
  const int64_t ldx = s.k + s.x_pad, ldo = s.n + s.out_pad;
  vela::testing::SplitMix rng{seed};
  // The exact input values (bf16-representable unless in_f32) and their device bytes.
  const size_t in_elem = s.in_f32 ? 4 : 2;
  auto draw = [&](float lo, float hi) {
    const float v = rng.uniform(lo, hi);
    return s.in_f32 ? v : vela::bf16_to_f32(vela::f32_to_bf16(v));
  };
  auto bytes_of = [&](const std::vector<float>& v) {
    std::vector<char> b(v.size() * in_elem);
    for (size_t i = 0; i < v.size(); ++i) {
      if (s.in_f32) std::memcpy(b.data() + i * 4, &v[i], 4);
      else { const uint16_t h = vela::f32_to_bf16(v[i]); std::memcpy(b.data() + i * 2, &h, 2); }
    }
    return b;
  };
  const int64_t w_rows = silu_mul ? 2 * s.n : s.n;
  std::vector<float> x(size_t(s.m * ldx)), w(size_t(w_rows * s.k)), bias(size_t(s.n));
  for (auto& v : x) v = draw(-1.0f, 1.0f);
  for (auto& v : w) v = draw(-1.0f, 1.0f);
  for (auto& v : bias) v = draw(-2.0f, 2.0f);

  const size_t out_elem = s.out_f32 ? 4 : 2;
  const size_t x_offset_bytes = size_t(s.x_offset) * in_elem;
  vela::testing::DeviceArray<char> dx(x.size() * in_elem + x_offset_bytes), dw(w.size() * in_elem),
      db(bias.size() * in_elem);
  vela::testing::DeviceArray<char> dout(size_t(s.m * ldo) * out_elem);
  REQUIRE((dx.get() && dw.get() && db.get() && dout.get()));
  const std::vector<char> xb = bytes_of(x), wb = bytes_of(w), bb = bytes_of(bias);
  CUDA_OK(cudaMemcpy(dx.get() + x_offset_bytes, xb.data(), xb.size(), cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(dw.get(), wb.data(), wb.size(), cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(db.get(), bb.data(), bb.size(), cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemset(dout.get(), 0xFF, size_t(s.m * ldo) * out_elem));  // NaN poison

  GemmArgs args;
  args.x = dx.get() + x_offset_bytes;
  args.x_row_stride = ldx;
  args.w = dw.get();
  args.bias = with_bias ? db.get() : nullptr;
  args.out = dout.get();
  args.out_row_stride = ldo;
  args.out_f32 = s.out_f32;
  args.in_f32 = s.in_f32;
  args.m = s.m;
  args.n = s.n;
  args.k = s.k;
  args.silu_mul = silu_mul;
  if (gemv) {
    REQUIRE(vela::kernels::gemv_supported(args));
    CUDA_OK(vela::kernels::gemv(args, nullptr));
  } else if (skinny_splits >= 0) {
    REQUIRE(vela::kernels::skinny_gemm_supported(args));
    CUDA_OK(vela::kernels::skinny_gemm(args, nullptr, skinny_splits));
  } else {
    auto r = gemm.run(args, nullptr);
    if (!r.ok()) FAIL(r.error().message);
  }
  CUDA_OK(cudaDeviceSynchronize());

  std::vector<char> out(size_t(s.m * ldo) * out_elem);
  CUDA_OK(cudaMemcpy(out.data(), dout.get(), out.size(), cudaMemcpyDeviceToHost));
  auto got_at = [&](int64_t i, int64_t j) -> float {
    const size_t idx = size_t(i * ldo + j);
    if (s.out_f32) { float f; std::memcpy(&f, out.data() + idx * 4, 4); return f; }
    uint16_t b; std::memcpy(&b, out.data() + idx * 2, 2); return vela::bf16_to_f32(b);
  };

  // Entries to check: everything for small outputs, else a random sample + the corners.
  std::vector<std::pair<int64_t, int64_t>> entries;
  if (s.m * s.n <= 32768) {
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t j = 0; j < s.n; ++j) entries.emplace_back(i, j);
  } else {
    entries = {{0, 0}, {0, s.n - 1}, {s.m - 1, 0}, {s.m - 1, s.n - 1}};
    for (int t = 0; t < 12000; ++t) entries.emplace_back(int64_t(rng.next() % uint64_t(s.m)), int64_t(rng.next() % uint64_t(s.n)));
  }
  int64_t bad = 0;
  double worst = 0.0;
  for (auto [i, j] : entries) {
    const float* xr = x.data() + i * ldx;
    auto dot = [&](int64_t row, double& mag_out) {
      const float* wr = w.data() + row * s.k;
      double sum = 0.0, mag_sum = 0.0;
      for (int64_t q = 0; q < s.k; ++q) {
        const double p = double(xr[q]) * double(wr[q]);
        sum += p;
        mag_sum += std::fabs(p);
      }
      mag_out = mag_sum;
      return sum;
    };
    double mag = 0.0;
    double ref = dot(j, mag);
    if (silu_mul) {  // mag becomes the propagated magnitude of the two dot products
      double mag_u = 0.0;
      const double g = ref, u = dot(s.n + j, mag_u), silu = g / (1.0 + std::exp(-g));
      ref = silu * u;
      mag = 1.1 * std::fabs(u) * mag + std::fabs(silu) * mag_u;
    }
    if (with_bias) {
      ref += bias[size_t(j)];
      mag += std::fabs(bias[size_t(j)]);
    }
    const double got = got_at(i, j);
    const double tol = 1e-4 * mag + (s.out_f32 ? 0.0 : std::ldexp(std::fabs(ref), -8));
    const double err = std::fabs(got - ref);
    if (!(err <= tol)) {  // also catches NaN (poison left in place)
      if (bad < 5) UNSCOPED_INFO("out[" << i << "," << j << "] = " << got << ", want " << ref << " (tol " << tol << ")");
      ++bad;
    }
    if (err / (tol > 0 ? tol : 1.0) > worst) worst = err / tol;
  }
  // Padding columns (n .. ldo) must keep the poison.
  int64_t clobbered = 0;
  for (int64_t i = 0; i < s.m && s.out_pad > 0; i += std::max<int64_t>(1, s.m / 16))
    for (int64_t j = s.n; j < ldo; ++j)
      if (!std::isnan(got_at(i, j))) ++clobbered;
  INFO("worst err/tol = " << worst << " over " << entries.size() << " entries");
  CHECK(clobbered == 0);
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("cuBLASLt GEMM matches an fp64 reference of the same bf16 values", "[gemm]") {
  auto gemm = Gemm::create(size_t(32) << 20, /*skinny=*/false);  // cuBLASLt at every m
  if (!gemm.ok()) FAIL(gemm.error().message);
  const int64_t ms[] = {1, 7, 128, 2048};
  struct NK { int64_t n, k, x_pad, out_pad; bool out_f32; };
  const NK nks[] = {
      {4096, 4096, 0, 0, false},
      {6144, 4096, 1024, 8, false},  // x is a strided view (e.g. inside a wider row); out has padding
      {14336, 4096, 0, 0, false},
      {1024, 3072, 0, 0, false},
      {151936, 1024, 0, 0, true},  // lm_head: fp32 logits
  };
  uint64_t seed = 1;
  for (int64_t m : ms)
    for (const NK& nk : nks)
      for (bool bias : {false, true})
        if (!(bias && nk.out_f32))  // refused by design (next test case)
          check_gemm(**gemm, {m, nk.n, nk.k, nk.x_pad, nk.out_pad, nk.out_f32}, bias, seed++);
}

// The small-batch matrix-vector path (what ops::linear takes for m <= 4), held to
// the same fp64 reference and tolerance; unlike cuBLASLt it takes a bias with fp32
// output.
TEST_CASE("GEMV (m <= 4) matches an fp64 reference of the same bf16 values", "[gemm][gemv]") {
  auto gemm = Gemm::create();
  if (!gemm.ok()) FAIL(gemm.error().message);
  struct NK { int64_t n, k, x_pad, out_pad; bool out_f32; };
  const NK nks[] = {
      {4096, 4096, 0, 0, false},
      {6144, 4096, 1024, 8, false},  // a strided x view, padded out
      {4096, 14336, 0, 0, false},    // down_proj: K not a multiple of the unrolled chunk (1024)
      {1024, 3072, 0, 0, false},
      {151936, 1024, 0, 0, true},    // lm_head: fp32 logits
      {17, 72, 128, 3, true},        // tiny: K below one chunk
  };
  uint64_t seed = 1000;
  for (int64_t m = 1; m <= vela::kernels::kGemvMaxRows; ++m)
    for (const NK& nk : nks)
      for (bool bias : {false, true})
        check_gemm(**gemm, {m, nk.n, nk.k, nk.x_pad, nk.out_pad, nk.out_f32, m == 3 ? 8 : 0}, bias, seed++, true);
}

// The MLP's gate_up projection with its activation in one GEMV (ops::linear_silu_mul
// at 1-2 rows): gate row j and up row n + j streamed together.
TEST_CASE("GEMV with silu_mul matches silu(gate) * up of an fp64 reference", "[gemm][gemv]") {
  auto gemm = Gemm::create();
  if (!gemm.ok()) FAIL(gemm.error().message);
  struct NK { int64_t n, k, x_pad, out_pad; };
  const NK nks[] = {
      {14336, 4096, 0, 0},   // Llama-3.1-8B's gate_up (2 x 14336 rows)
      {3072, 1024, 1024, 8}, // Qwen3-0.6B's, from a strided x view into a padded out
      {17, 72, 128, 3},      // tiny: K below one chunk
  };
  uint64_t seed = 3000;
  for (int64_t m = 1; m <= 2; ++m)
    for (const NK& nk : nks)
      check_gemm(**gemm, {m, nk.n, nk.k, nk.x_pad, nk.out_pad, false}, false, seed++, true, true);
  GemmArgs with_bias;
  with_bias.m = 1;
  with_bias.n = with_bias.k = 64;
  with_bias.x_row_stride = with_bias.out_row_stride = 64;
  with_bias.silu_mul = true;
  with_bias.bias = reinterpret_cast<const void*>(uintptr_t(256));
  CHECK_FALSE(vela::kernels::gemv_supported(with_bias));  // silu_mul takes no bias
}

// The decode step's fusions (ops::norm_linear / linear_add at 1-2 rows): the GEMV
// normalising an fp32 residual itself (norm_residual: every block derives the bf16
// rows add_rms_norm would write, emulated here bit for bit up to the last ulp of
// rsqrt) and adding its result into an fp32 residual (accumulate). Same fp64
// reference and tolerance as check_gemm; the accumulated residual also carries its
// own fp32 rounding (2^-24 |r|, allowed 1e-6 |r|).
static void check_fused_gemv(int64_t m, int64_t n, int64_t k, bool norm, bool silu_mul, bool with_bias, uint64_t seed) {
  INFO("m=" << m << " n=" << n << " k=" << k << " norm=" << norm << " silu_mul=" << silu_mul << " bias=" << with_bias);
  vela::testing::SplitMix rng{seed};
  auto bf = [](float v) { return vela::bf16_to_f32(vela::f32_to_bf16(v)); };
  const int64_t w_rows = silu_mul ? 2 * n : n;
  std::vector<float> w(static_cast<size_t>(w_rows * k)), bias(static_cast<size_t>(n)), nw(static_cast<size_t>(k)),
      res(static_cast<size_t>(m * k)), x(static_cast<size_t>(m * k));
  for (auto& v : w) v = bf(rng.uniform(-1.0f, 1.0f));
  for (auto& v : bias) v = bf(rng.uniform(-2.0f, 2.0f));
  for (auto& v : nw) v = bf(rng.uniform(0.5f, 1.5f));
  for (auto& v : res) v = rng.uniform(-3.0f, 3.0f);  // fp32, not bf16-representable
  if (norm) {  // add_rms_norm's arithmetic: x = bf16(w * (r * rsqrt(mean(r^2) + eps)))
    for (int64_t i = 0; i < m; ++i) {
      float ss = 0.0f;
      for (int64_t q = 0; q < k; ++q) ss += res[size_t(i * k + q)] * res[size_t(i * k + q)];
      const float inv = 1.0f / std::sqrt(ss / float(k) + 1e-6f);
      for (int64_t q = 0; q < k; ++q) x[size_t(i * k + q)] = bf(nw[size_t(q)] * (res[size_t(i * k + q)] * inv));
    }
  } else {
    for (auto& v : x) v = bf(rng.uniform(-1.0f, 1.0f));
  }
  auto bf_bits = [](const std::vector<float>& v) {
    std::vector<uint16_t> b(v.size());
    for (size_t i = 0; i < v.size(); ++i) b[i] = vela::f32_to_bf16(v[i]);
    return b;
  };
  // The residual the kernel accumulates into: [m, n] fp32 with a padded row stride.
  const int64_t ldo = n + 4;
  std::vector<float> acc_in(static_cast<size_t>(m * ldo));
  for (auto& v : acc_in) v = rng.uniform(-4.0f, 4.0f);
  vela::testing::DeviceArray<uint16_t> dw(bf_bits(w)), db(bf_bits(bias)), dnw(bf_bits(nw)), dx(bf_bits(x));
  vela::testing::DeviceArray<float> dres(res), dacc(acc_in);
  vela::testing::DeviceArray<uint16_t> dout(static_cast<size_t>(m * ldo));
  dout.poison();

  GemmArgs a;
  a.x = norm ? nullptr : static_cast<const void*>(dx.get());
  a.x_row_stride = norm ? 0 : k;
  a.w = dw.get();
  a.bias = with_bias ? db.get() : nullptr;
  a.out = norm ? static_cast<void*>(dout.get()) : static_cast<void*>(dacc.get());
  a.out_row_stride = ldo;
  a.out_f32 = !norm;
  a.accumulate = !norm;
  a.m = m;
  a.n = n;
  a.k = k;
  a.silu_mul = silu_mul;
  if (norm) {
    a.norm_residual = dres.get();
    a.norm_weight = dnw.get();
    a.norm_eps = 1e-6f;
  }
  REQUIRE(vela::kernels::gemv_supported(a));
  CUDA_OK(vela::kernels::gemv(a, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const std::vector<uint16_t> out = dout.download();
  const std::vector<float> acc = dacc.download();

  int64_t bad = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      auto dot = [&](int64_t row, double& mag) {
        double sum = 0.0;
        mag = 0.0;
        for (int64_t q = 0; q < k; ++q) {
          const double p = double(x[size_t(i * k + q)]) * double(w[size_t(row * k + q)]);
          sum += p;
          mag += std::fabs(p);
        }
        return sum;
      };
      double mag = 0.0, ref = dot(j, mag);
      if (silu_mul) {
        double mag_u = 0.0;
        const double u = dot(n + j, mag_u), silu = ref / (1.0 + std::exp(-ref));
        mag = 1.1 * std::fabs(u) * mag + std::fabs(silu) * mag_u;
        ref = silu * u;
      }
      if (with_bias) {
        ref += bias[size_t(j)];
        mag += std::fabs(bias[size_t(j)]);
      }
      double got, tol = 1e-4 * mag;
      if (norm) {
        got = vela::bf16_to_f32(out[size_t(i * ldo + j)]);
        tol += std::ldexp(std::fabs(ref), -8);
      } else {
        ref += acc_in[size_t(i * ldo + j)];
        got = acc[size_t(i * ldo + j)];
        tol += 1e-6 * std::fabs(ref);
      }
      if (!(std::fabs(got - ref) <= tol)) {
        if (bad < 5) UNSCOPED_INFO("out[" << i << "," << j << "] = " << got << ", want " << ref << " (tol " << tol << ")");
        ++bad;
      }
    }
  // Outside [m, n] nothing is written: the padding keeps its poison / its values.
  int64_t clobbered = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = n; j < ldo; ++j)
      if (norm ? !std::isnan(vela::bf16_to_f32(out[size_t(i * ldo + j)]))
               : acc[size_t(i * ldo + j)] != acc_in[size_t(i * ldo + j)])
        ++clobbered;
  CHECK(clobbered == 0);
  CHECK(bad == 0);
}

TEST_CASE("GEMV with the RMSNorm before it and the residual add after it matches an fp64 reference",
          "[gemm][gemv][fused_norm]") {
  uint64_t seed = 5000;
  for (int64_t m = 1; m <= 2; ++m) {
    check_fused_gemv(m, 6144, 4096, true, false, false, seed++);  // Llama-3.1-8B's qkv
    check_fused_gemv(m, 2048, 1024, true, false, true, seed++);   // a qkv with bias (Qwen2-style), hidden 1024
    check_fused_gemv(m, 14336, 4096, true, true, false, seed++);  // 8B's gate_up with SiLU
    check_fused_gemv(m, 3072, 1024, true, true, false, seed++);   // Qwen3-0.6B's gate_up
    check_fused_gemv(m, 17, 72, true, false, true, seed++);       // tiny: k below one chunk and the block's stride
    check_fused_gemv(m, 4096, 4096, false, false, false, seed++); // 8B's o into the residual
    check_fused_gemv(m, 4096, 14336, false, false, true, seed++); // 8B's down (with a bias)
    check_fused_gemv(m, 17, 72, false, false, false, seed++);
  }
  // What the fusions refuse (ops::fused_norm_linear_ok keeps the model off these).
  GemmArgs a;
  a.m = 3;
  a.n = a.k = 64;
  a.out_row_stride = 64;
  a.w = reinterpret_cast<const void*>(uintptr_t(256));
  a.norm_residual = reinterpret_cast<const float*>(uintptr_t(512));
  a.norm_weight = reinterpret_cast<const void*>(uintptr_t(768));
  CHECK_FALSE(vela::kernels::gemv_supported(a));  // the norm prologue at 3 rows
  a.m = 1;
  CHECK(vela::kernels::gemv_supported(a));
  a.k = 32768;
  CHECK_FALSE(vela::kernels::gemv_supported(a));  // normalised rows beyond 48 KB of shared memory
  a.k = 64;
  a.accumulate = true;
  a.out_f32 = true;
  CHECK_FALSE(vela::kernels::gemv_supported(a));  // accumulate with the norm: a race on the residual
  a.norm_residual = nullptr;
  a.norm_weight = nullptr;
  a.x = reinterpret_cast<const void*>(uintptr_t(1024));
  a.x_row_stride = 64;
  CHECK(vela::kernels::gemv_supported(a));
  a.out_f32 = false;
  CHECK_FALSE(vela::kernels::gemv_supported(a));  // accumulate into bf16
}

// The decode-batch wgmma kernel (Gemm::run's path for kSkinnyMinRows..kSkinnyMaxRows
// rows on sm_90), held to the same fp64 reference: the shapes of Qwen3-0.6B and
// Llama-3.1-8B at decode batches of one to four 64-token tiles (TMA boxes past m land
// as zeros), every k split (a cluster of 1-8 CTAs reducing over each other's
// shared memory), an uneven split (k = 5 stages over 8 CTAs: clamped to 5, rows
// dealt unevenly), n not a multiple of the 128-row tile, strided and offset views, a
// bias, fp32 logits.
TEST_CASE("skinny GEMM (decode batches, wgmma) matches an fp64 reference", "[gemm][skinny]") {
  int major = 0;
  CUDA_OK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0));
  if (major != 9) {
    WARN("the skinny GEMM is sm_90 (wgmma); this device is sm_" << major << "x");
    return;
  }
  auto gemm = Gemm::create();
  if (!gemm.ok()) FAIL(gemm.error().message);
  struct NK { int64_t n, k, x_pad, out_pad; bool out_f32; int64_t x_offset; };
  const NK nks[] = {
      {4096, 1024, 0, 0, false, 0},       // Qwen3-0.6B qkv
      {1024, 2048, 0, 0, false, 0},       // o
      {6144, 1024, 0, 0, false, 0},       // gate_up
      {1024, 3072, 0, 0, false, 0},       // down
      {151936, 1024, 0, 0, true, 0},      // lm_head: fp32 logits
      {6144, 4096, 1024, 8, false, 0},    // Llama-3.1-8B qkv from a strided x view into a padded out
      {1000, 320, 8, 4, false, 8},        // n not a multiple of 128, 5 k stages, x 16 bytes off
      {132, 64, 0, 0, true, 0},           // one k stage
  };
  uint64_t seed = 5000;
  for (int64_t m : {3, 17, 64, 65, 128, 200, 256})
    for (const NK& nk : nks) {
      const Shape shape{m, nk.n, nk.k, nk.x_pad, nk.out_pad, nk.out_f32, nk.x_offset};
      check_gemm(**gemm, shape, !nk.out_f32 && m % 2 == 1, seed++, false, false, 0);
    }
  for (int splits : {1, 2, 3, 4, 8})
    for (int64_t m : {17, 200}) {
      check_gemm(**gemm, {m, 1024, 2048, 0, 0, false}, true, seed++, false, false, splits);
      check_gemm(**gemm, {m, 1000, 320, 8, 4, false, 8}, false, seed++, false, false, splits);
    }
  // Past the pipeline's depth (k = 2048: 32 stages, each refilled 7 times) at one, two
  // and four token tiles, a partial last one among them.
  for (int64_t m : {3, 100, 256}) {
    check_gemm(**gemm, {m, 1024, 2048, 0, 0, false}, true, seed++, false, false, 1);
    check_gemm(**gemm, {m, 4096, 1024, 0, 0, false}, false, seed++, false, false, 0);
  }
  // Gemm::run takes it (or cuBLASLt where it is off) at a decode batch: same answer;
  // and cuBLASLt past the preferred range.
  check_gemm(**gemm, {48, 4096, 1024, 0, 0, false}, false, seed++);
  check_gemm(**gemm, {256, 4096, 1024, 0, 0, false}, false, seed++);
  GemmArgs a;
  a.m = 64;
  a.n = 1024;
  a.k = 1000;  // not a multiple of 64
  a.x_row_stride = 1000;
  a.out_row_stride = 1024;
  a.x = a.w = a.out = reinterpret_cast<void*>(uintptr_t(256));
  CHECK_FALSE(vela::kernels::skinny_gemm_supported(a));
  a.k = a.x_row_stride = 1024;
  CHECK(vela::kernels::skinny_gemm_supported(a));
  a.m = vela::kernels::kSkinnyMaxRows + 1;
  CHECK_FALSE(vela::kernels::skinny_gemm_supported(a));
}

TEST_CASE("cuBLASLt GEMM: odd shapes and a misaligned x view", "[gemm]") {
  auto gemm = Gemm::create();
  if (!gemm.ok()) FAIL(gemm.error().message);
  // k = 72 with an x row stride of 200 + an x offset of 8 elements (16 bytes).
  check_gemm(**gemm, {3, 17, 72, 128, 3, false, 8}, true, 99);
  check_gemm(**gemm, {64, 256, 512, 64, 0, false, 24}, false, 98);
  check_gemm(**gemm, {97, 129, 200, 8, 0, true}, false, 100);
  // A second run of a cached shape must give the same answer (plan reuse).
  check_gemm(**gemm, {97, 129, 200, 8, 0, true}, false, 101);
}

TEST_CASE("fp32 GEMM (model.dtype float32) matches an fp64 reference of the same fp32 values", "[gemm][fp32]") {
  auto gemm = Gemm::create();
  if (!gemm.ok()) FAIL(gemm.error().message);
  struct NK { int64_t n, k, x_pad, out_pad; };
  const NK nks[] = {
      {4096, 4096, 0, 0},
      {6144, 4096, 1024, 8},  // a strided x view (q inside a fused row), padded out
      {1024, 3072, 0, 0},
      {151936, 1024, 0, 0},   // lm_head
      {96, 64, 96, 0},        // reference-model sizes: qkv of hidden 64 inside a wider row
      {17, 72, 128, 3},       // odd
  };
  uint64_t seed = 2000;
  // m = 1 and 2 too: fp32 never takes the GEMV, ops::linear sends every m here.
  for (int64_t m : {1, 2, 7, 128, 2048})
    for (const NK& nk : nks)
      for (bool bias : {false, true}) {
        Shape sh{m, nk.n, nk.k, nk.x_pad, nk.out_pad, true, m == 7 ? 4 : 0, true};  // offset 16 bytes
        if (m * nk.n * nk.k > (int64_t(1) << 36)) continue;  // the 2048 x lm_head case: time, not coverage
        check_gemm(**gemm, sh, bias, seed++);
      }
  GemmArgs a;
  a.in_f32 = true, a.out_f32 = true, a.m = 1, a.n = 64, a.k = 64, a.x_row_stride = 64, a.out_row_stride = 64;
  CHECK_FALSE(vela::kernels::gemv_supported(a));
}

TEST_CASE("fp32 GEMM is IEEE fp32, not TF32", "[gemm][fp32]") {
  // x = 1 + 2^-20 (21 significant bits: TF32 keeps 11 and reads 1), w = 1, k = 8:
  // every partial sum is exact in fp32 (<= 8 + 2^-17, 24 bits), so fp32 gives exactly
  // 8 + 8 * 2^-20 and TF32 gives 8.
  auto gemm = Gemm::create();
  if (!gemm.ok()) FAIL(gemm.error().message);
  const int64_t m = 16, n = 16, k = 8;
  const float xv = 1.0f + std::ldexp(1.0f, -20);
  vela::testing::DeviceArray<float> x(std::vector<float>(size_t(m * k), xv)), w(std::vector<float>(size_t(n * k), 1.0f));
  vela::testing::DeviceArray<float> out(size_t(m * n));
  GemmArgs a;
  a.x = x.get(), a.w = w.get(), a.out = out.get();
  a.x_row_stride = k, a.out_row_stride = n, a.m = m, a.n = n, a.k = k;
  a.in_f32 = true, a.out_f32 = true;
  auto r = (*gemm)->run(a, nullptr);
  if (!r.ok()) FAIL(r.error().message);
  CUDA_OK(cudaDeviceSynchronize());
  const float want = 8.0f + std::ldexp(8.0f, -20);
  for (float got : out.download()) REQUIRE(got == want);
}

TEST_CASE("cuBLASLt GEMM rejects bad arguments with the shape in the message", "[gemm]") {
  auto gemm = Gemm::create();
  if (!gemm.ok()) FAIL(gemm.error().message);
  GemmArgs args;
  args.m = 4; args.n = 8; args.k = 16; args.x_row_stride = 8; args.out_row_stride = 8;
  auto r = (*gemm)->run(args, nullptr);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("k=16") != std::string::npos);
  // A bias with fp32 output (cuBLASLt has no algorithm for it) is refused, not run.
  vela::testing::DeviceArray<uint16_t> x(64), w(128), b(8);
  vela::testing::DeviceArray<float> out(32);
  args.x_row_stride = 16; args.out_row_stride = 8;
  args.x = x.get(); args.w = w.get();
  args.bias = b.get(); args.out = out.get(); args.out_f32 = true;
  auto refused = (*gemm)->run(args, nullptr);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("bias") != std::string::npos);
  // fp32 inputs into a bf16 output: refused (model.dtype float32 keeps fp32 throughout).
  args.bias = nullptr; args.in_f32 = true; args.out_f32 = false;
  auto mixed = (*gemm)->run(args, nullptr);
  REQUIRE_FALSE(mixed.ok());
  CHECK(mixed.error().message.find("in=f32") != std::string::npos);
}

TEST_CASE("GEMM bench", "[.bench]") {
  auto gemm = Gemm::create();
  if (!gemm.ok()) FAIL(gemm.error().message);
  struct B { int64_t m, n, k; };
  for (B b : {B{1, 4096, 4096}, B{256, 4096, 4096}, B{8192, 4096, 4096}, B{8192, 14336, 4096}, B{256, 151936, 4096}}) {
    vela::testing::DeviceArray<uint16_t> x(size_t(b.m * b.k)), w(size_t(b.n * b.k)), out(size_t(b.m * b.n));
    REQUIRE((x.get() && w.get() && out.get()));
    CUDA_OK(cudaMemset(x.get(), 0x3c, size_t(b.m * b.k) * 2));
    CUDA_OK(cudaMemset(w.get(), 0x3c, size_t(b.n * b.k) * 2));
    GemmArgs a;
    a.x = x.get(); a.x_row_stride = b.k;
    a.w = w.get();
    a.out = out.get(); a.out_row_stride = b.n;
    a.m = b.m; a.n = b.n; a.k = b.k;
    for (int i = 0; i < 3; ++i) REQUIRE((*gemm)->run(a, nullptr).ok());
    cudaEvent_t t0, t1;
    cudaEventCreate(&t0); cudaEventCreate(&t1);
    const int iters = 20;
    cudaEventRecord(t0);
    for (int i = 0; i < iters; ++i) (void)(*gemm)->run(a, nullptr);
    cudaEventRecord(t1);
    CUDA_OK(cudaEventSynchronize(t1));
    float ms = 0;
    cudaEventElapsedTime(&ms, t0, t1);
    const double s = ms * 1e-3 / iters;
    const double flops = 2.0 * double(b.m) * double(b.n) * double(b.k);
    const double bytes = 2.0 * double(b.m * b.k + b.n * b.k + b.m * b.n);
    std::printf("gemm m=%-5ld n=%-6ld k=%-5ld  %8.1f us  %7.1f TFLOP/s  %7.1f GB/s\n", long(b.m), long(b.n), long(b.k),
                s * 1e6, flops / s * 1e-12, bytes / s * 1e-9);
    cudaEventDestroy(t0); cudaEventDestroy(t1);
  }
}
