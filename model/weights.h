#pragma once
// Where weights come from: a safetensors checkpoint or seeded random numbers of
// the right shapes ("dummy"). Either way a layer asks for one tensor by its HF
// name and full shape, plus the slice its tensor-parallel rank keeps, and gets
// that slice back as a contiguous tensor in the target's dtype on the target's
// device (fp32 on the CPU; bf16 on CUDA, read as stored with no fp32 detour, and
// dummy weights generated on the device).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "model/device.h"
#include "model/tensor.h"

namespace vela {

// The part of a tensor one rank keeps: [start, start + length) along dim.
// Indices past the tensor's end read as zero (a padded vocab shard).
struct Slice {
  int dim = -1;          // -1: the whole tensor
  int64_t start = 0;
  int64_t length = 0;
  static Slice whole() { return {}; }
  static Slice along(int dim, int64_t start, int64_t length) { return {dim, start, length}; }
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // Checks that `name` exists with exactly full_shape, then returns its slice.
  virtual Result<Tensor> load(const std::string& name, const std::vector<int64_t>& full_shape,
                              const Slice& slice) = 0;
  virtual bool contains(const std::string& name) const = 0;
  // Where load() puts tensors (its device, dtype and stream).
  const DeviceContext& target() const { return target_; }

 protected:
  explicit WeightSource(const DeviceContext& target) : target_(target) {}

 private:
  DeviceContext target_;
};

// Opens model_dir's safetensors (single file or sharded through the index).
Result<std::unique_ptr<WeightSource>> open_safetensors_weights(const std::string& model_dir,
                                                               const DeviceContext& target = DeviceContext::cpu());

// Seeded random weights: uniform with the config's initializer_range as standard
// deviation; RMSNorm weights ("*norm.weight") are one. Each element is a pure
// function of (seed, name, index), so shards of every rank agree with TP=1.
// The dummy weights' rule, for the CUDA kernel that generates them (kernels/
// dummy_fill) and its tests: element s of tensor `name` is
// (2 * float(splitmix64(dummy_key(seed, name) + s) >> 40) / 2^24 - 1) * dummy_half_width,
// or 1 for a norm weight.
uint64_t dummy_key(uint64_t seed, const std::string& name);
bool dummy_is_norm(const std::string& name);
float dummy_half_width(double init_std);

std::unique_ptr<WeightSource> make_dummy_weights(uint64_t seed, double init_std,
                                                 const DeviceContext& target = DeviceContext::cpu());

}  // namespace vela
