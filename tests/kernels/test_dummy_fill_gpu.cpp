// dummy_fill must equal model/weights.cpp's DummyWeights (make_dummy_weights)
// bit for bit: after bf16 rounding for bf16 outputs, exactly for fp32 ones (model.dtype
// float32), for whole tensors, dim-0 shards, slices of an
// inner dim, padded shards past the end (zero rows) and norm weights (ones).
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/elementwise.h"
#include "model/weights.h"
#include "tests/kernels/gpu_test_util.h"

using namespace vela;
using namespace vela::testing;
namespace k = vela::kernels;

namespace {

// Runs dummy_fill for (name, full_shape, slice) and compares with DummyWeights.
// flatten: describe a whole tensor as one run of numel elements (inner = 1, the
// scalar path) instead of [1, dim0, rest].
template <class T>
void check(uint64_t seed, double init_std, const std::string& name, const std::vector<int64_t>& full,
           const Slice& slice, bool flatten = false) {
  INFO("seed=" << seed << " tensor=" << name << " slice dim=" << slice.dim << " start=" << slice.start
               << " length=" << slice.length << " flatten=" << flatten);
  auto cpu = make_dummy_weights(seed, init_std)->load(name, full, slice);
  REQUIRE(cpu.ok());
  const Tensor& want = cpu.value();
  std::vector<float> want_f(want.data<float>(), want.data<float>() + want.numel());

  int64_t numel = 1;
  for (int64_t d : full) numel *= d;
  k::DummyFillParams<T> p;
  p.key = vela::dummy_key(seed, name);
  p.half_width = vela::dummy_half_width(init_std);
  p.is_norm = vela::dummy_is_norm(name);
  if (slice.dim < 0) {
    p.outer = 1;
    p.dim_size = flatten ? numel : full[0];
    p.start = 0;
    p.length = p.dim_size;
    p.inner = flatten ? 1 : numel / full[0];
  } else {
    p.outer = 1;
    p.inner = 1;
    for (int d = 0; d < slice.dim; ++d) p.outer *= full[size_t(d)];
    for (size_t d = size_t(slice.dim) + 1; d < full.size(); ++d) p.inner *= full[d];
    p.dim_size = full[size_t(slice.dim)];
    p.start = slice.start;
    p.length = slice.length;
  }
  REQUIRE(p.outer * p.length * p.inner == want.numel());
  DeviceArray<HostOf<T>> dout(size_t(want.numel()));
  dout.poison();
  p.out = elems<T>(dout);
  LAUNCH_OK(k::dummy_fill(p, nullptr));
  require_equal_bits(dout.download(), to_elems<T>(want_f), "dummy weights");
}

}  // namespace

TEMPLATE_TEST_CASE("dummy_fill equals DummyWeights (rounded to bf16 for bf16)", "[dummy_fill]", k::bf16, float) {
  const double init_std = 0.02;
  const std::vector<uint64_t> seeds{0, 1234};
  SECTION("whole tensors") {
    for (uint64_t seed : seeds) {
      check<TestType>(seed, init_std, "model.layers.0.mlp.down_proj.weight", {96, 40}, Slice::whole());
      check<TestType>(seed, init_std, "model.layers.0.mlp.down_proj.weight", {96, 40}, Slice::whole(), true);
      check<TestType>(seed, init_std, "lm_head.weight", {33, 17}, Slice::whole());
      check<TestType>(seed, init_std, "model.layers.0.self_attn.q_proj.bias", {4096}, Slice::whole());
    }
  }
  SECTION("dim-0 shards") {
    for (uint64_t seed : seeds) {
      check<TestType>(seed, init_std, "model.layers.1.self_attn.q_proj.weight", {100, 24}, Slice::along(0, 50, 25));
      check<TestType>(seed, init_std, "model.layers.1.mlp.gate_proj.weight", {100, 21}, Slice::along(0, 0, 50));
    }
  }
  SECTION("slices of an inner dim") {
    for (uint64_t seed : seeds) {
      check<TestType>(seed, init_std, "model.layers.1.self_attn.o_proj.weight", {24, 100}, Slice::along(1, 30, 20));
      check<TestType>(seed, init_std, "model.layers.2.mlp.experts.w1", {4, 50, 16}, Slice::along(1, 10, 25));
    }
  }
  SECTION("padded vocab shards past the end are zero") {
    for (uint64_t seed : seeds) {
      check<TestType>(seed, init_std, "model.embed_tokens.weight", {1003, 16}, Slice::along(0, 504, 504));
      check<TestType>(seed, init_std, "model.embed_tokens.weight", {1003, 16}, Slice::along(0, 0, 504));
      check<TestType>(seed, init_std, "lm_head.weight", {1003, 17}, Slice::along(0, 504, 504));
    }
  }
  SECTION("norm weights are one (and zero past the end)") {
    for (uint64_t seed : seeds) {
      check<TestType>(seed, init_std, "model.layers.0.input_layernorm.weight", {64}, Slice::whole());
      check<TestType>(seed, init_std, "model.norm.weight", {20}, Slice::along(0, 16, 8));
      check<TestType>(seed, init_std, "model.layers.3.self_attn.q_norm.weight", {128}, Slice::whole());
    }
  }
}
