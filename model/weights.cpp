#include "model/weights.h"

#include <unistd.h>

#include <cmath>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "common/hash.h"
#include "model/safetensors.h"
#ifdef VELA_HAVE_CUDA
#include "kernels/elementwise.h"
#include "model/cuda/staged_upload.h"
#endif

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

// The slice as [outer, length, inner] of the tensor viewed as [outer, dim_size, inner].
struct SliceGeometry {
  int64_t outer = 1, dim_size = 0, start = 0, length = 0, inner = 1;
};

SliceGeometry geometry(const std::vector<int64_t>& full, const Slice& slice) {
  SliceGeometry g;
  if (slice.dim < 0) {  // the whole tensor: one run
    int64_t n = 1;
    for (int64_t d : full) n *= d;
    g.dim_size = g.length = 1;
    g.inner = n;
    return g;
  }
  for (int d = 0; d < slice.dim; ++d) g.outer *= full[size_t(d)];
  for (size_t d = size_t(slice.dim) + 1; d < full.size(); ++d) g.inner *= full[d];
  g.dim_size = full[size_t(slice.dim)];
  g.start = slice.start;
  g.length = slice.length;
  return g;
}

// Calls run(src_flat_index, count) for each contiguous run of the slice in output
// order, src_flat_index -1 for a run past the tensor's end (zeros).
template <class Run>
void for_each_source_run(const std::vector<int64_t>& full, const Slice& slice, Run run) {
  const SliceGeometry g = geometry(full, slice);
  for (int64_t o = 0; o < g.outer; ++o)
    for (int64_t i = 0; i < g.length; ++i) {
      const int64_t src_row = g.start + i;
      run(src_row >= g.dim_size ? -1 : (o * g.dim_size + src_row) * g.inner, g.inner);
    }
}

// Calls fill(dst, src_flat_index, count) for each contiguous run of the slice,
// or zero-fills runs past the tensor's end.
template <class T, class Fill>
void for_each_run(const std::vector<int64_t>& full, const Slice& slice, T* dst, Fill fill) {
  for_each_source_run(full, slice, [&](int64_t src_index, int64_t count) {
    if (src_index < 0) std::memset(dst, 0, size_t(count) * sizeof(T));
    else fill(dst, src_index, count);
    dst += count;
  });
}

// count elements of src (F32/BF16/F16) as bf16, without an fp32 copy when stored bf16.
void convert_to_bf16(const void* src, DType from, size_t count, uint16_t* dst) {
  if (from == DType::kBF16) {
    std::memcpy(dst, src, count * sizeof(uint16_t));
    return;
  }
  float buf[1024];
  for (size_t done = 0; done < count; done += 1024) {
    const size_t n = std::min<size_t>(1024, count - done);
    convert_to_f32(static_cast<const char*>(src) + done * dtype_size(from), from, n, buf);
    for (size_t i = 0; i < n; ++i) dst[done + i] = f32_to_bf16(buf[i]);
  }
}

// Host tensors are built in the target dtype (F32 or BF16) and, for a device
// target, copied there once.
Result<Tensor> place(Tensor host, const DeviceContext& target) {
  if (!target.is_cuda()) return host;
  return to_device(host, host.dtype(), target);
}

class SafetensorsWeights final : public WeightSource {
 public:
  SafetensorsWeights(std::unique_ptr<SafetensorsCheckpoint> ckpt, const DeviceContext& target)
      : WeightSource(target), ckpt_(std::move(ckpt)) {}

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
    const std::vector<int64_t> shape = sliced_shape(full_shape, slice);
    const size_t elem = dtype_size(*dtype);
#ifdef VELA_HAVE_CUDA
    if (target().is_cuda()) return load_to_device(name, full_shape, slice, e, *dtype, shape);
#endif
    Tensor out = Tensor::zeros(shape.data(), int(shape.size()), target().dtype);
    if (target().dtype == DType::kBF16) {
      for_each_run(full_shape, slice, out.data<uint16_t>(), [&](uint16_t* dst, int64_t src_index, int64_t count) {
        convert_to_bf16(e.data + size_t(src_index) * elem, *dtype, size_t(count), dst);
      });
    } else {
      for_each_run(full_shape, slice, out.data<float>(), [&](float* dst, int64_t src_index, int64_t count) {
        convert_to_f32(e.data + size_t(src_index) * elem, *dtype, size_t(count), dst);
      });
    }
    return place(std::move(out), target());
  }

 private:
#ifdef VELA_HAVE_CUDA
  // bf16 straight from the mapping into pinned staging and on to the device, the
  // next chunk converted while the last one travels; zero rows of a padded shard
  // travel the same way. An fp32 target (model.dtype float32) gets bf16-stored
  // tensors the same way into a bf16 scratch on the device, widened there into the
  // fp32 tensor (no fp32 copy on the host, half the bytes over PCIe); F32/F16-stored
  // ones travel as fp32.
  Result<Tensor> load_to_device(const std::string& name, const std::vector<int64_t>& full_shape, const Slice& slice,
                                const SafetensorsEntry& e, DType stored, const std::vector<int64_t>& shape) {
    if (!upload_) {
      VELA_TRY_ASSIGN(upload_, cuda::StagedUpload::create(target().stream));
      total_bytes_ = ckpt_->total_bytes();
    }
    const bool f32_target = target().dtype == DType::kF32;
    const bool widen = f32_target && stored == DType::kBF16;
    const size_t wire = f32_target && !widen ? 4 : 2;  // bytes per element in staging
    Tensor out = Tensor::empty(shape.data(), int(shape.size()), target().dtype, target().device);
    void* dst_base = out.raw_data();
    if (widen) {
      if (!widen_scratch_.defined() || widen_scratch_.numel() < out.numel()) {
        const int64_t n = out.numel();
        // The last tensor's copies and widening may still use the old scratch.
        cudaError_t err = cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(target().stream));
        if (err != cudaSuccess) return make_error("cuda_error", "loading '" + name + "': " + cudaGetErrorString(err));
        widen_scratch_ = Tensor();
        widen_scratch_ = Tensor::empty(&n, 1, DType::kBF16, target().device);
      }
      dst_base = widen_scratch_.raw_data();
    }
    VELA_TRY(upload_->begin(dst_base));
    const size_t elem = dtype_size(stored);
    Status status = ok_status();
    auto send = [&](const unsigned char* src, int64_t count) {  // src == nullptr: zeros
      while (count > 0 && status) {
        auto room = upload_->reserve(size_t(count) * wire, wire);
        if (!room) { status = room.error(); return; }
        const int64_t n = int64_t(room->size() / wire);
        void* dst = room->data();
        if (src == nullptr) std::memset(dst, 0, size_t(n) * wire);
        else if (wire == 2) convert_to_bf16(src, stored, size_t(n), static_cast<uint16_t*>(dst)), src += size_t(n) * elem;
        else convert_to_f32(src, stored, size_t(n), static_cast<float*>(dst)), src += size_t(n) * elem;
        status = upload_->commit(size_t(n) * wire);
        count -= n;
      }
    };
    for_each_source_run(full_shape, slice, [&](int64_t src_index, int64_t count) {
      send(src_index < 0 ? nullptr : e.data + size_t(src_index) * elem, count);
    });
    if (!status) return status.error();
    // Sent now, so nothing of this tensor waits in staging; the copy still runs while
    // the next tensor is converted.
    VELA_TRY(upload_->flush());
    if (widen) {  // after the copies on the same stream
      cudaError_t err = kernels::widen_bf16(static_cast<const kernels::bf16*>(widen_scratch_.raw_data()),
                                            static_cast<float*>(out.raw_data()), out.numel(),
                                            reinterpret_cast<cudaStream_t>(target().stream));
      if (err != cudaSuccess)
        return make_error("cuda_error", "widening '" + name + "' to fp32: " + cudaGetErrorString(err));
    }
    report_progress(name);
    return out;
  }

  // A progress line on a terminal for checkpoints over 2 GiB.
  void report_progress(const std::string& name) {
    if (total_bytes_ < (uint64_t(2) << 30) || !isatty(2)) return;
    const double gib = double(uint64_t(1) << 30);
    std::fprintf(stderr, "\rloading weights: %6.2f / %.2f GiB  %-60.60s", double(upload_->bytes_sent()) / gib,
                 double(total_bytes_) / gib, name.c_str());
    std::fflush(stderr);
  }

  std::unique_ptr<cuda::StagedUpload> upload_;
  Tensor widen_scratch_;  // bf16 [largest tensor so far], fp32 targets only
  uint64_t total_bytes_ = 0;
#endif
  std::unique_ptr<SafetensorsCheckpoint> ckpt_;
};

class DummyWeights final : public WeightSource {
 public:
  DummyWeights(uint64_t seed, double init_std, const DeviceContext& target)
      : WeightSource(target), seed_(seed), half_width_(dummy_half_width(init_std)) {}

  bool contains(const std::string&) const override { return true; }

  Result<Tensor> load(const std::string& name, const std::vector<int64_t>& full_shape,
                      const Slice& slice) override {
    const std::vector<int64_t> shape = sliced_shape(full_shape, slice);
    const bool is_norm = dummy_is_norm(name);
    const uint64_t key = dummy_key(seed_, name);
    auto value = [&](int64_t src_index) {
      if (is_norm) return 1.0f;
      uint64_t r = splitmix64(key + uint64_t(src_index));
      float u = float(r >> 40) * (1.0f / 16777216.0f);  // [0, 1)
      return (2.0f * u - 1.0f) * half_width_;
    };
#ifdef VELA_HAVE_CUDA
    if (target().is_cuda()) {  // generated where it lives: an 8B model in well under a second
      Tensor out = Tensor::empty(shape.data(), int(shape.size()), target().dtype, target().device);
      const SliceGeometry g = geometry(full_shape, slice);
      auto fill = [&]<class T>(T* dst) {
        kernels::DummyFillParams<T> p;
        p.out = dst;
        p.key = key;
        p.half_width = half_width_;
        p.is_norm = is_norm;
        p.outer = g.outer, p.dim_size = g.dim_size, p.start = g.start, p.length = g.length, p.inner = g.inner;
        return kernels::dummy_fill(p, reinterpret_cast<cudaStream_t>(target().stream));
      };
      cudaError_t err = target().dtype == DType::kF32 ? fill(static_cast<float*>(out.raw_data()))
                                                      : fill(static_cast<kernels::bf16*>(out.raw_data()));
      if (err != cudaSuccess)
        return make_error("cuda_error", "dummy weights for '" + name + "': " + cudaGetErrorString(err));
      return out;
    }
#endif
    Tensor out = Tensor::zeros(shape.data(), int(shape.size()), target().dtype);
    if (target().dtype == DType::kBF16) {
      for_each_run(full_shape, slice, out.data<uint16_t>(), [&](uint16_t* dst, int64_t src_index, int64_t count) {
        for (int64_t i = 0; i < count; ++i) dst[i] = f32_to_bf16(value(src_index + i));
      });
    } else {
      for_each_run(full_shape, slice, out.data<float>(), [&](float* dst, int64_t src_index, int64_t count) {
        for (int64_t i = 0; i < count; ++i) dst[i] = value(src_index + i);
      });
    }
    return out;
  }

 private:
  uint64_t seed_;
  float half_width_;
};

}  // namespace

uint64_t dummy_key(uint64_t seed, const std::string& name) { return splitmix64(seed ^ fnv1a(name)); }
bool dummy_is_norm(const std::string& name) {
  return name.size() >= 11 && name.compare(name.size() - 11, 11, "norm.weight") == 0;
}
float dummy_half_width(double init_std) { return float(init_std * std::sqrt(3.0)); }

Result<std::unique_ptr<WeightSource>> open_safetensors_weights(const std::string& model_dir,
                                                               const DeviceContext& target) {
  VELA_TRY_ASSIGN(auto ckpt, SafetensorsCheckpoint::open(model_dir));
  return std::unique_ptr<WeightSource>(new SafetensorsWeights(std::move(ckpt), target));
}

std::unique_ptr<WeightSource> make_dummy_weights(uint64_t seed, double init_std, const DeviceContext& target) {
  return std::make_unique<DummyWeights>(seed, init_std, target);
}

}  // namespace vela
