// The row-wise and element-wise CUDA kernels (RMSNorm, fused residual RMSNorm,
// SiLU-and-mul; RoPE in test_rope_gpu.cpp) against the CPU backend's fp32 ops on the same values,
// each for both element types (bf16, and fp32 for model.dtype float32: kOutTol),
// sweeping odd sizes (scalar paths), aligned ones (16-byte vector paths), the
// warp-/block-per-row switch of rms_norm and strided head views inside fused qkv rows.
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

Tensor f32_view(std::vector<float>& buf, int64_t rows, int64_t cols) {
  return Tensor::from_blob(buf.data(), {rows, cols}, DType::kF32);
}

// Columns [offset, offset + heads * hd) of each row of a [T, W] buffer, as [T, heads, hd].
Tensor head_view(std::vector<float>& buf, int64_t rows, int64_t width, int64_t offset, int64_t heads, int64_t hd) {
  return f32_view(buf, rows, width).narrow(1, offset, heads * hd).unflatten_last(heads, hd);
}

}  // namespace

TEMPLATE_TEST_CASE("rms_norm on [T, D] rows, out of place and in place", "[rms_norm]", k::bf16, float) {
  using T = TestType;
  const float eps = 1e-6f;
  // 1024 is the last warp-per-row dim, 1032 the first block-per-row one; pad 3 breaks alignment.
  for (int64_t dim : {17, 97, 1000, 1024, 1032, 4096, 8192})
    for (int64_t tokens : {1, 3, 257})
      for (int64_t pad : {0, 8, 3}) {
        INFO("D=" << dim << " T=" << tokens << " x_token_stride=D+" << pad);
        const int64_t stride = dim + pad;
        std::mt19937_64 rng(uint64_t(dim * 1000003 + tokens * 101 + pad));
        ElemData<T> x = random_elems<T>(size_t(tokens * stride), -2.0f, 2.0f, rng);
        ElemData<T> w = random_elems<T>(size_t(dim), 0.5f, 1.5f, rng);
        Tensor wt = Tensor::from_blob(w.f32.data(), {dim}, DType::kF32);

        std::vector<float> want(size_t(tokens * dim));
        Tensor want_t = f32_view(want, tokens, dim);
        ops::cpu::rms_norm(head_view(x.f32, tokens, stride, 0, 1, dim), wt, eps, want_t);

        DeviceArray<HostOf<T>> dx(x.bits), dw(w.bits), dout(size_t(tokens * dim));
        dout.poison();
        k::RmsNormParams<T> p;
        p.x = elems<T>(dx);
        p.out = elems<T>(dout);
        p.weight = elems<T>(dw);
        p.num_tokens = tokens;
        p.dim = dim;
        p.x_token_stride = stride;
        p.out_token_stride = dim;
        p.eps = eps;
        LAUNCH_OK(k::rms_norm(p, nullptr));
        require_close(upcast(dout.download()), want, kOutTol<T>, "out of place");

        // In place: the padding columns must keep their values.
        std::vector<float> want_inplace = x.f32;
        Tensor v = head_view(want_inplace, tokens, stride, 0, 1, dim);
        ops::cpu::rms_norm(v, wt, eps, v);
        p.out = elems<T>(dx);
        p.out_token_stride = stride;
        LAUNCH_OK(k::rms_norm(p, nullptr));
        require_close(upcast(dx.download()), want_inplace, kOutTol<T>, "in place");
      }
}

TEMPLATE_TEST_CASE("rms_norm over q and k head views inside fused qkv rows (qk-norm)", "[rms_norm]", k::bf16, float) {
  using T = TestType;
  const float eps = 1e-6f;
  struct Shape { int64_t nq, nk, hd; };
  for (Shape s : {Shape{8, 2, 128}, Shape{32, 8, 128}, Shape{4, 1, 64}, Shape{3, 1, 17}})
    for (int64_t tokens : {1, 3, 257}) {
      INFO("nq=" << s.nq << " nk=" << s.nk << " hd=" << s.hd << " T=" << tokens);
      const int64_t width = (s.nq + 2 * s.nk) * s.hd;
      std::mt19937_64 rng(uint64_t(s.nq * 7919 + s.hd * 31 + tokens));
      ElemData<T> qkv = random_elems<T>(size_t(tokens * width), -3.0f, 3.0f, rng);
      ElemData<T> wq = random_elems<T>(size_t(s.hd), 0.5f, 1.5f, rng), wk = random_elems<T>(size_t(s.hd), 0.5f, 1.5f, rng);
      Tensor wqt = Tensor::from_blob(wq.f32.data(), {s.hd}, DType::kF32);
      Tensor wkt = Tensor::from_blob(wk.f32.data(), {s.hd}, DType::kF32);
      DeviceArray<HostOf<T>> dqkv(qkv.bits), dwq(wq.bits), dwk(wk.bits);

      // Out of place: q heads into a contiguous [T, nq, hd].
      std::vector<float> want_q(size_t(tokens * s.nq * s.hd));
      Tensor want_qt = head_view(want_q, tokens, s.nq * s.hd, 0, s.nq, s.hd);
      ops::cpu::rms_norm(head_view(qkv.f32, tokens, width, 0, s.nq, s.hd), wqt, eps, want_qt);
      DeviceArray<HostOf<T>> dq(want_q.size());
      dq.poison();
      k::RmsNormParams<T> p;
      p.x = elems<T>(dqkv);
      p.out = elems<T>(dq);
      p.weight = elems<T>(dwq);
      p.num_tokens = tokens;
      p.num_heads = s.nq;
      p.dim = s.hd;
      p.x_token_stride = width;
      p.out_token_stride = s.nq * s.hd;
      p.eps = eps;
      LAUNCH_OK(k::rms_norm(p, nullptr));
      require_close(upcast(dq.download()), want_q, kOutTol<T>, "q out of place");

      // In place on q then k, as the model does; v must stay untouched.
      std::vector<float> want = qkv.f32;
      Tensor qv = head_view(want, tokens, width, 0, s.nq, s.hd);
      Tensor kv = head_view(want, tokens, width, s.nq * s.hd, s.nk, s.hd);
      ops::cpu::rms_norm(qv, wqt, eps, qv);
      ops::cpu::rms_norm(kv, wkt, eps, kv);
      p.out = elems<T>(dqkv);
      p.out_token_stride = width;
      LAUNCH_OK(k::rms_norm(p, nullptr));
      p.x = p.out = elems<T>(dqkv) + s.nq * s.hd;
      p.weight = elems<T>(dwk);
      p.num_heads = s.nk;
      LAUNCH_OK(k::rms_norm(p, nullptr));
      require_close(upcast(dqkv.download()), want, kOutTol<T>, "q and k in place");
    }
}

TEMPLATE_TEST_CASE("add_rms_norm: fp32 residual update and normed output (bf16 or fp32)", "[add_rms_norm]", k::bf16, float) {
  using T = TestType;
  const float eps = 1e-5f;
  for (int64_t dim : {17, 97, 1000, 4096, 8192})
    for (int64_t tokens : {1, 3, 257})
      for (int64_t pad : {0, 8, 1})
        for (bool first_layer : {false, true}) {
          INFO("D=" << dim << " T=" << tokens << " x_token_stride=D+" << pad << " first_layer=" << first_layer);
          const int64_t stride = dim + pad;
          std::mt19937_64 rng(uint64_t(dim * 1000003 + tokens * 101 + pad * 7 + first_layer));
          ElemData<T> x = random_elems<T>(size_t(tokens * stride), -2.0f, 2.0f, rng);
          ElemData<T> w = random_elems<T>(size_t(dim), 0.5f, 1.5f, rng);
          std::vector<float> residual(size_t(tokens * dim));
          std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
          for (float& r : residual) r = dist(rng);  // any fp32, not only bf16 values

          std::vector<float> want_x = x.f32, want_res = residual;
          Tensor wt = Tensor::from_blob(w.f32.data(), {dim}, DType::kF32);
          Tensor xv = f32_view(want_x, tokens, stride).narrow(1, 0, dim);
          Tensor rt = f32_view(want_res, tokens, dim);
          if (first_layer) {
            for (int64_t t = 0; t < tokens; ++t)
              for (int64_t i = 0; i < dim; ++i) want_res[size_t(t * dim + i)] = x.f32[size_t(t * stride + i)];
            ops::cpu::rms_norm(rt, wt, eps, xv);
          } else {
            ops::cpu::add_rms_norm(xv, rt, wt, eps);
          }

          DeviceArray<HostOf<T>> dx(x.bits), dw(w.bits);
          DeviceArray<float> dres(residual);
          if (first_layer) dres.poison();  // the kernel must write every residual element
          k::AddRmsNormParams<T> p;
          p.x = elems<T>(dx);
          p.residual = dres.get();
          p.weight = elems<T>(dw);
          p.num_tokens = tokens;
          p.dim = dim;
          p.x_token_stride = stride;
          p.eps = eps;
          p.first_layer = first_layer;
          LAUNCH_OK(k::add_rms_norm(p, nullptr));
          // residual + x is one fp32 add on both sides: bit-for-bit.
          require_equal_bits(dres.download(), want_res, "residual");
          require_close(upcast(dx.download()), want_x, kOutTol<T>, "x");
        }
}

TEMPLATE_TEST_CASE("silu_and_mul", "[silu_and_mul]", k::bf16, float) {
  using T = TestType;
  for (int64_t inter : {17, 97, 1000, 4096, 14336})
    for (int64_t tokens : {1, 3, 257})
      for (int64_t out_offset : {0, 1}) {  // 1: a misaligned output takes the scalar path
        INFO("I=" << inter << " T=" << tokens << " out_offset=" << out_offset);
        std::mt19937_64 rng(uint64_t(inter * 1000003 + tokens * 101 + out_offset));
        ElemData<T> gu = random_elems<T>(size_t(tokens * 2 * inter), -6.0f, 6.0f, rng);
        std::vector<float> want(size_t(tokens * inter));
        Tensor want_t = f32_view(want, tokens, inter);
        ops::cpu::silu_and_mul(f32_view(gu.f32, tokens, 2 * inter), want_t);

        DeviceArray<HostOf<T>> dgu(gu.bits), dout(size_t(tokens * inter + out_offset));
        dout.poison();
        k::SiluAndMulParams<T> p;
        p.gate_up = elems<T>(dgu);
        p.out = elems<T>(dout) + out_offset;
        p.num_tokens = tokens;
        p.intermediate = inter;
        LAUNCH_OK(k::silu_and_mul(p, nullptr));
        std::vector<float> got = upcast(dout.download());
        got.erase(got.begin(), got.begin() + out_offset);
        require_close(got, want, kOutTol<T>, "out");
      }
}
