#include "model/weights.h"

#include <cmath>
#include <cstring>
#include <sstream>

#include "model/safetensors.h"

namespace vela {

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << "]";
  return os.str();
}

// Shape of the slice a rank receives.
std::vector<int64_t> sliced_shape(const std::vector<int64_t>& full, const Slice& slice) {
  std::vector<int64_t> out = full;
  if (slice.dim >= 0) out[size_t(slice.dim)] = slice.length;
  return out;
}

// Calls fill(dst, src_flat_index, count) for each contiguous run of the slice,
// or zero-fills runs past the tensor's end. Views the tensor as [outer, dim, inner].
template <class Fill>
void for_each_run(const std::vector<int64_t>& full, const Slice& slice, float* dst, Fill fill) {
  if (slice.dim < 0) {
    int64_t n = 1;
    for (int64_t d : full) n *= d;
    fill(dst, 0, n);
    return;
  }
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < slice.dim; ++d) outer *= full[size_t(d)];
  for (size_t d = size_t(slice.dim) + 1; d < full.size(); ++d) inner *= full[d];
  int64_t dim_size = full[size_t(slice.dim)];
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < slice.length; ++i) {
      int64_t src_row = slice.start + i;
      float* out = dst + (o * slice.length + i) * inner;
      if (src_row >= dim_size) {
        std::memset(out, 0, size_t(inner) * sizeof(float));
      } else {
        fill(out, (o * dim_size + src_row) * inner, inner);
      }
    }
  }
}

Tensor make_f32(const std::vector<int64_t>& shape) {
  return Tensor::zeros(shape.data(), int(shape.size()), DType::kF32);
}

class SafetensorsWeights final : public WeightSource {
 public:
  explicit SafetensorsWeights(std::unique_ptr<SafetensorsCheckpoint> ckpt) : ckpt_(std::move(ckpt)) {}

  bool contains(const std::string& name) const override { return ckpt_->find(name).entry != nullptr; }

  Result<Tensor> load(const std::string& name, const std::vector<int64_t>& full_shape,
                      const Slice& slice) override {
    auto found = ckpt_->find(name);
    if (found.entry == nullptr)
      return make_error("missing_tensor", (found.file ? *found.file : ckpt_->describe_files()) +
                                              ": missing tensor '" + name + "'");
    const std::string& file = *found.file;
    const SafetensorsEntry& e = *found.entry;
    if (e.shape != full_shape)
      return make_error("bad_shape", file + ": tensor '" + name + "' has shape " + shape_text(e.shape) +
                                         ", expected " + shape_text(full_shape));
    auto dtype = dtype_from_safetensors(e.dtype_name);
    if (!dtype || (*dtype != DType::kF32 && *dtype != DType::kBF16 && *dtype != DType::kF16))
      return make_error("bad_dtype", file + ": tensor '" + name + "' has dtype " + e.dtype_name +
                                         " (supported: BF16, F16, F32)");
    Tensor out = make_f32(sliced_shape(full_shape, slice));
    size_t elem = dtype_size(*dtype);
    for_each_run(full_shape, slice, out.data<float>(), [&](float* dst, int64_t src_index, int64_t count) {
      convert_to_f32(e.data + size_t(src_index) * elem, *dtype, size_t(count), dst);
    });
    return out;
  }

 private:
  std::unique_ptr<SafetensorsCheckpoint> ckpt_;
};

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

class DummyWeights final : public WeightSource {
 public:
  DummyWeights(uint64_t seed, double init_std) : seed_(seed), half_width_(float(init_std * std::sqrt(3.0))) {}

  bool contains(const std::string&) const override { return true; }

  Result<Tensor> load(const std::string& name, const std::vector<int64_t>& full_shape,
                      const Slice& slice) override {
    Tensor out = make_f32(sliced_shape(full_shape, slice));
    bool is_norm = name.size() >= 11 && name.compare(name.size() - 11, 11, "norm.weight") == 0;
    uint64_t key = splitmix64(seed_ ^ fnv1a(name));
    for_each_run(full_shape, slice, out.data<float>(), [&](float* dst, int64_t src_index, int64_t count) {
      for (int64_t i = 0; i < count; ++i) {
        if (is_norm) {
          dst[i] = 1.0f;
          continue;
        }
        uint64_t r = splitmix64(key + uint64_t(src_index + i));
        float u = float(r >> 40) * (1.0f / 16777216.0f);  // [0, 1)
        dst[i] = (2.0f * u - 1.0f) * half_width_;
      }
    });
    return out;
  }

 private:
  uint64_t seed_;
  float half_width_;
};

}  // namespace

Result<std::unique_ptr<WeightSource>> open_safetensors_weights(const std::string& model_dir) {
  auto ckpt = SafetensorsCheckpoint::open(model_dir);
  if (!ckpt) return ckpt.error();
  return std::unique_ptr<WeightSource>(new SafetensorsWeights(std::move(ckpt.value())));
}

std::unique_ptr<WeightSource> make_dummy_weights(uint64_t seed, double init_std) {
  return std::make_unique<DummyWeights>(seed, init_std);
}

}  // namespace vela
