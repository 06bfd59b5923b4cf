#pragma once
// Helpers of the GPU kernel tests: checked CUDA calls, device arrays, seeded
// bf16 or fp32 inputs (kept both as the kernel's element bits for the GPU and as
// their exact fp32 values for the CPU reference), and comparisons that report the
// worst element. Kernels instantiated for both element types are tested through
// TEMPLATE_TEST_CASE over kernels::bf16 and float with the helpers below.
#include <catch2/catch.hpp>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "common/hash.h"
#include "kernels/common.h"
#include "model/dtype.h"

// Fails the test case with the call's text and CUDA's message.
#define CUDA_OK(expr)                                                             \
  do {                                                                            \
    cudaError_t cuda_ok_err_ = (expr);                                            \
    INFO(#expr << " -> " << cudaGetErrorName(cuda_ok_err_) << ": "                \
               << cudaGetErrorString(cuda_ok_err_));                              \
    REQUIRE(cuda_ok_err_ == cudaSuccess);                                         \
  } while (0)

// Checks a launcher's returned error, then waits for the kernel and checks that too.
#define LAUNCH_OK(expr)             \
  do {                              \
    CUDA_OK(expr);                  \
    CUDA_OK(cudaDeviceSynchronize()); \
  } while (0)

namespace vela::testing {

// A device array of n elements of T (bf16 is held as uint16_t bits).
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n) {
    if (n_ > 0) CUDA_OK(cudaMalloc(&p_, bytes()));
  }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) { upload(host); }
  ~DeviceArray() { cudaFree(p_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  T* get() const { return static_cast<T*>(p_); }
  kernels::bf16* bf16() const {
    static_assert(sizeof(T) == 2);
    return reinterpret_cast<kernels::bf16*>(p_);
  }
  // The elements as the kernel's type U (bf16 held as uint16_t bits, float as float).
  template <class U>
  U* as() const {
    static_assert(sizeof(U) == sizeof(T));
    return reinterpret_cast<U*>(p_);
  }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * sizeof(T); }

  void upload(const std::vector<T>& host) {
    REQUIRE(host.size() == n_);
    if (n_ > 0) CUDA_OK(cudaMemcpy(p_, host.data(), bytes(), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    if (n_ > 0) CUDA_OK(cudaMemcpy(host.data(), p_, bytes(), cudaMemcpyDeviceToHost));
    return host;
  }
  // 0xFF bytes: NaN as bf16 and as fp32, so an element a kernel skips fails any comparison.
  void poison() {
    if (n_ > 0) CUDA_OK(cudaMemset(p_, 0xFF, bytes()));
  }

 private:
  void* p_ = nullptr;
  size_t n_;
};

// A device array's elements as the kernel's element type T.
template <class T, class H>
T* elems(const DeviceArray<H>& a) {
  return a.template as<T>();
}

// splitmix64: a seeded generator that needs no state beyond one word.
struct SplitMix {
  uint64_t s;
  uint64_t next() {
    const uint64_t r = splitmix64(s);
    s += 0x9e3779b97f4a7c15ull;
    return r;
  }
  float uniform(float lo, float hi) { return lo + (hi - lo) * float(next() >> 40) * (1.0f / 16777216.0f); }
  double unit() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
  float normal() {  // Box-Muller
    const double u1 = std::max(unit(), 1e-300), u2 = unit();
    return float(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
  int32_t below(int64_t n) { return int32_t(next() % uint64_t(n)); }
};

// How the host holds a kernel element type: bf16 as its uint16_t bits, float as is.
template <class T>
using HostOf = std::conditional_t<std::is_same_v<T, float>, float, uint16_t>;

// Values of element type T and their exact fp32 values.
template <class T>
struct ElemData {
  std::vector<HostOf<T>> bits;
  std::vector<float> f32;
};
using Bf16Data = ElemData<kernels::bf16>;

inline Bf16Data random_bf16(size_t n, float lo, float hi, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> dist(lo, hi);
  Bf16Data d;
  d.bits.resize(n);
  d.f32.resize(n);
  for (size_t i = 0; i < n; ++i) {
    d.bits[i] = f32_to_bf16(dist(rng));
    d.f32[i] = bf16_to_f32(d.bits[i]);
  }
  return d;
}

inline std::vector<float> upcast(const std::vector<uint16_t>& bits) {
  std::vector<float> out(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) out[i] = bf16_to_f32(bits[i]);
  return out;
}
inline std::vector<float> upcast(const std::vector<float>& f) { return f; }

// Uniform values in [lo, hi) of element type T (bf16: rounded, f32 its exact value).
template <class T>
ElemData<T> random_elems(size_t n, float lo, float hi, std::mt19937_64& rng) {
  if constexpr (std::is_same_v<T, float>) {
    std::uniform_real_distribution<float> dist(lo, hi);
    ElemData<T> d;
    d.f32.resize(n);
    for (float& v : d.f32) v = dist(rng);
    d.bits = d.f32;
    return d;
  } else {
    return random_bf16(n, lo, hi, rng);
  }
}

// Tolerance of a bf16 output against an fp32 reference computed from the same
// inputs: |got - want| <= atol + rtol * |want|.
struct Tolerance {
  double rtol = 0.0, atol = 0.0;
};

// The GPU computes in fp32 like the CPU (only the order of a reduction, rsqrtf /
// expf vs libm, and FMA contraction differ: a few fp32 ulps, ~1e-6 relative) and
// then rounds to bf16, an error of at most half an ulp = 2^-9 relative. rtol
// 2^-8 is that rounding with 2x headroom; atol 1e-5 covers the fp32 differences
// where a result cancels to near zero (rope's x1*c - x2*s with |x| <= 4: the
// absolute fp32 error is ~4 * 2^-23 = 5e-7), while a wrong element (wrong
// head, pair, position or scale) is off by O(0.1) or more.
inline constexpr Tolerance kBf16Out{1.0 / 256.0, 1e-5};

// fp32 outputs (model.dtype float32) against the same fp32 reference: no rounding
// step, only those fp32 differences: rsqrtf / expf within 2 ulps of libm, FMA
// contraction and reduction order (rms_norm sums up to 8192 squares in a tree on
// the GPU and in a row on the CPU: a random walk of ~sqrt(8192) * 2^-24 ~ 5e-6 of
// the sum, half that after the rsqrt). rtol 2e-5 is 3x that; atol 1e-5, as for bf16,
// covers a result that cancels to near zero (rope's x1*c - x2*s with |x| <= 4: each
// product rounds by up to 2^-22 and one side may fuse them into an FMA, ~1e-6). A
// wrong element is off by O(0.1), and even bf16 rounding (2^-9) would fail by 100x.
inline constexpr Tolerance kF32Out{2e-5, 1e-5};

// The output tolerance of element type T.
template <class T>
inline constexpr Tolerance kOutTol = std::is_same_v<T, float> ? kF32Out : kBf16Out;

// Requires every element within tol (NaN fails); reports the count and the worst.
inline void require_close(const std::vector<float>& got, const std::vector<float>& want, Tolerance tol,
                          const std::string& what) {
  REQUIRE(got.size() == want.size());
  size_t bad = 0, worst = 0;
  double worst_excess = -1.0;
  for (size_t i = 0; i < got.size(); ++i) {
    double err = std::fabs(double(got[i]) - double(want[i]));
    double allowed = tol.atol + tol.rtol * std::fabs(double(want[i]));
    if (!(err <= allowed)) {
      ++bad;
      double excess = std::isnan(err) ? 1e30 : err - allowed;
      if (excess > worst_excess) worst_excess = excess, worst = i;
    }
  }
  std::ostringstream os;
  os << what << ": " << bad << " of " << got.size() << " elements out of tolerance";
  if (bad > 0) os << "; worst at " << worst << ": got " << got[worst] << ", want " << want[worst];
  INFO(os.str());
  REQUIRE(bad == 0);
}

// Requires bit-for-bit equality (copies, fp32 adds that both sides do identically).
template <class T>
void require_equal_bits(const std::vector<T>& got, const std::vector<T>& want, const std::string& what) {
  REQUIRE(got.size() == want.size());
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(T)) != 0) {
      if (bad++ == 0) first = i;
    }
  }
  std::ostringstream os;
  os << what << ": " << bad << " of " << got.size() << " elements differ";
  if (bad > 0) os << "; first at " << first << ": got " << double(got[first]) << ", want " << double(want[first]);
  INFO(os.str());
  REQUIRE(bad == 0);
}

// fp32 reference values rounded to bf16 bits (what a copy kernel must produce).
inline std::vector<uint16_t> to_bf16(const std::vector<float>& f) {
  std::vector<uint16_t> out(f.size());
  for (size_t i = 0; i < f.size(); ++i) out[i] = f32_to_bf16(f[i]);
  return out;
}

// fp32 reference values as element type T holds them (bf16 bits, or the floats).
template <class T>
std::vector<HostOf<T>> to_elems(const std::vector<float>& f) {
  if constexpr (std::is_same_v<T, float>) return f;
  else return to_bf16(f);
}

}  // namespace vela::testing
