#include "model/device.h"

#include <unistd.h>

#include <charconv>
#include <cstring>
#include <vector>

#ifdef VELA_HAVE_CUDA
#include "model/cuda/cuda_device.h"
#endif

namespace vela {

namespace {

class CpuRuntime final : public DeviceRuntime {
 public:
  const DeviceContext& context() const override { return ctx_; }
  Result<DeviceMemory> memory() const override { return query_device_memory(Device::cpu()); }
  Status synchronize() override { return ok_status(); }
  std::string description() const override { return "cpu (fp32)"; }

 private:
  DeviceContext ctx_ = DeviceContext::cpu();
};

[[maybe_unused]] Error no_cuda(Device device) {
  return make_error("no_cuda", device_name(device) + ": this build has no CUDA backend (configure with cmake --preset cuda)");
}

// Host copy of a contiguous host tensor in another dtype (F32/BF16/F16 -> F32/BF16).
Result<Tensor> convert_host(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype) return t;
  const size_t n = size_t(t.numel());
  Tensor f32 = t;
  if (t.dtype() != DType::kF32) {
    f32 = Tensor::zeros(t.shape(), t.ndim(), DType::kF32);
    convert_to_f32(t.raw_data(), t.dtype(), n, f32.data<float>());
  }
  if (dtype == DType::kF32) return f32;
  if (dtype != DType::kBF16)
    return make_error("bad_dtype", "cannot convert " + std::string(dtype_name(t.dtype())) + " to " +
                                       std::string(dtype_name(dtype)));
  Tensor out = Tensor::zeros(t.shape(), t.ndim(), DType::kBF16);
  const float* src = f32.data<float>();
  uint16_t* dst = out.data<uint16_t>();
  for (size_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
  return out;
}

}  // namespace

Result<Device> parse_device(std::string_view name) {
  if (name == "cpu") return Device::cpu();
  if (name == "cuda") return Device{DeviceType::kCUDA, 0};
  if (name.substr(0, 5) == "cuda:") {
    int index = -1;
    auto digits = name.substr(5);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (ec == std::errc() && end == digits.data() + digits.size() && index >= 0) return Device{DeviceType::kCUDA, index};
  }
  return make_error("bad_device", "device '" + std::string(name) + "' is neither cpu nor cuda:N");
}

std::string device_name(Device device) {
  return device.type == DeviceType::kCPU ? "cpu" : "cuda:" + std::to_string(device.index);
}

int cuda_device_count() {
#ifdef VELA_HAVE_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

Result<DeviceMemory> query_device_memory(Device device) {
  if (device.type == DeviceType::kCPU) {
    const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
    return DeviceMemory{uint64_t(sysconf(_SC_PHYS_PAGES)) * page, uint64_t(sysconf(_SC_AVPHYS_PAGES)) * page};
  }
#ifdef VELA_HAVE_CUDA
  return cuda::memory_info(device.index);
#else
  return no_cuda(device);
#endif
}

Result<std::unique_ptr<DeviceRuntime>> DeviceRuntime::open(Device device, std::string_view dtype) {
  if (device.type == DeviceType::kCPU) {
    // The CPU backend computes in fp32 whatever the weights are stored in.
    if (dtype != "auto" && dtype != "float32")
      return make_error("bad_dtype", "model.dtype '" + std::string(dtype) +
                                         "': the CPU backend computes in float32 (use auto or float32)");
    return std::unique_ptr<DeviceRuntime>(new CpuRuntime());
  }
#ifdef VELA_HAVE_CUDA
  if (dtype != "auto" && dtype != "bfloat16" && dtype != "float32")
    return make_error("bad_dtype", "model.dtype '" + std::string(dtype) +
                                       "': the CUDA backend computes in bfloat16 or float32 (use auto, bfloat16 "
                                       "or float32)");
  return cuda::open_runtime(device.index, dtype == "float32" ? DType::kF32 : DType::kBF16);
#else
  return no_cuda(device);
#endif
}

Status copy_tensor(const Tensor& src, Tensor& dst, const DeviceContext& ctx) {
  if (src.nbytes() != dst.nbytes() || src.dtype() != dst.dtype() || !src.is_contiguous() || !dst.is_contiguous())
    return make_error("bad_copy", "copy " + src.shape_string() + " " + std::string(dtype_name(src.dtype())) + " to " +
                                      dst.shape_string() + " " + std::string(dtype_name(dst.dtype())));
  if (src.device().type == DeviceType::kCPU && dst.device().type == DeviceType::kCPU) {
    std::memcpy(dst.raw_data(), src.raw_data(), src.nbytes());
    return ok_status();
  }
#ifdef VELA_HAVE_CUDA
  return cuda::copy(dst.raw_data(), src.raw_data(), src.nbytes(), ctx.stream);
#else
  (void)ctx;
  return no_cuda(dst.device().type == DeviceType::kCPU ? src.device() : dst.device());
#endif
}

Result<Tensor> to_device(const Tensor& host, DType dtype, const DeviceContext& ctx) {
  VELA_TRY_ASSIGN(Tensor converted, convert_host(host, dtype));
  if (!ctx.is_cuda()) return converted;
  Tensor out = Tensor::zeros(host.shape(), host.ndim(), dtype, ctx.device);
  VELA_TRY(copy_tensor(converted, out, ctx));
  return out;
}

Result<Tensor> host_staging_tensor(int64_t num_elements, DType dtype, const DeviceContext& ctx) {
  if (!ctx.is_cuda()) return Tensor::zeros({num_elements}, dtype);
#ifdef VELA_HAVE_CUDA
  const size_t bytes = size_t(num_elements) * dtype_size(dtype);
  VELA_TRY_ASSIGN(void* p, cuda::allocate_pinned(bytes));
  std::memset(p, 0, bytes);
  return Tensor::wrap(std::make_shared<Storage>(p, bytes, Device::cpu(), &cuda::release_pinned), {num_elements}, dtype);
#else
  return no_cuda(ctx.device);
#endif
}

Status copy_async(void* dst, const void* src, size_t nbytes, const DeviceContext& ctx) {
  if (!ctx.is_cuda()) {
    std::memcpy(dst, src, nbytes);
    return ok_status();
  }
#ifdef VELA_HAVE_CUDA
  return cuda::copy_async(dst, src, nbytes, ctx.stream);
#else
  return no_cuda(ctx.device);
#endif
}

Status copy_rows_async(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t row_bytes,
                             size_t rows, const DeviceContext& ctx) {
  if (!ctx.is_cuda()) {
    for (size_t r = 0; r < rows; ++r)
      std::memcpy(static_cast<char*>(dst) + r * dst_pitch, static_cast<const char*>(src) + r * src_pitch, row_bytes);
    return ok_status();
  }
#ifdef VELA_HAVE_CUDA
  return cuda::copy_rows_async(dst, dst_pitch, src, src_pitch, row_bytes, rows, ctx.stream);
#else
  return no_cuda(ctx.device);
#endif
}

Result<Tensor> to_host_f32(const Tensor& t, const DeviceContext& ctx) {
  Tensor host = t;
  if (t.device().type != DeviceType::kCPU) {
    host = Tensor::zeros(t.shape(), t.ndim(), t.dtype());
    VELA_TRY(copy_tensor(t, host, ctx));
  }
  return convert_host(host, DType::kF32);
}

}  // namespace vela
