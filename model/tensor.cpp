#include "model/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>

#ifdef VELA_HAVE_CUDA
#include "model/cuda/cuda_device.h"
#endif

namespace vela {

namespace {
void free_aligned(void* p) { std::free(p); }
}  // namespace

std::shared_ptr<Storage> Storage::allocate(size_t nbytes, Device device, bool zero) {
  if (device.type == DeviceType::kCUDA) {
#ifdef VELA_HAVE_CUDA
    return std::make_shared<Storage>(cuda::allocate(nbytes, device.index, zero), nbytes, device, &cuda::release);
#else
    (void)zero;
    throw std::bad_alloc();  // unreachable: DeviceRuntime::open refuses CUDA devices in this build
#endif
  }
  size_t rounded = (nbytes + 63) / 64 * 64;  // 64-byte alignment for SIMD and BLAS
  void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, rounded == 0 ? 64 : rounded);
  return std::make_shared<Storage>(p, nbytes, device, &free_aligned);
}

std::shared_ptr<Storage> Storage::borrow(void* data, size_t nbytes, Device device) {
  return std::make_shared<Storage>(data, nbytes, device, nullptr);
}

Tensor Tensor::empty(const int64_t* shape, int ndim, DType dtype, Device device) {
  return allocate_contiguous(shape, ndim, dtype, device, /*zero=*/false);
}

Tensor Tensor::zeros(const int64_t* shape, int ndim, DType dtype, Device device) {
  return allocate_contiguous(shape, ndim, dtype, device, /*zero=*/true);
}

Tensor Tensor::allocate_contiguous(const int64_t* shape, int ndim, DType dtype, Device device, bool zero) {
  assert(ndim >= 1 && ndim <= kMaxDims);
  Tensor t;
  t.ndim_ = ndim;
  t.dtype_ = dtype;
  int64_t n = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    assert(shape[d] >= 0);
    t.shape_[d] = shape[d];
    t.stride_[d] = n;
    n *= shape[d];
  }
  t.storage_ = Storage::allocate(size_t(n) * dtype_size(dtype), device, zero);
  return t;
}

Tensor Tensor::zeros(std::initializer_list<int64_t> shape, DType dtype, Device device) {
  return zeros(shape.begin(), int(shape.size()), dtype, device);
}

Tensor Tensor::wrap(std::shared_ptr<Storage> storage, std::initializer_list<int64_t> shape, DType dtype) {
  Tensor t = from_blob(storage->data(), shape, dtype, storage->device());
  assert(t.nbytes() <= storage->nbytes());
  t.storage_ = std::move(storage);
  return t;
}

Tensor Tensor::from_blob(void* data, std::initializer_list<int64_t> shape, DType dtype, Device device) {
  Tensor t;
  t.ndim_ = int(shape.size());
  assert(t.ndim_ >= 1 && t.ndim_ <= kMaxDims);
  t.dtype_ = dtype;
  int64_t n = 1;
  for (int d = t.ndim_ - 1; d >= 0; --d) {
    t.shape_[d] = shape.begin()[d];
    t.stride_[d] = n;
    n *= t.shape_[d];
  }
  t.storage_ = Storage::borrow(data, size_t(n) * dtype_size(dtype), device);
  return t;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int d = 0; d < ndim_; ++d) n *= shape_[d];
  return n;
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int d = ndim_ - 1; d >= 0; --d) {
    if (shape_[d] != 1 && stride_[d] != expected) return false;
    expected *= shape_[d];
  }
  return true;
}

std::string Tensor::shape_string() const {
  std::string s = "[";
  for (int d = 0; d < ndim_; ++d) {
    if (d > 0) s += ", ";
    s += std::to_string(shape_[d]);
  }
  return s + "]";
}

Tensor Tensor::view(std::initializer_list<int64_t> shape) const {
  assert(is_contiguous());
  Tensor t = *this;
  t.ndim_ = int(shape.size());
  assert(t.ndim_ >= 1 && t.ndim_ <= kMaxDims);
  int64_t known = 1;
  int infer = -1;
  for (int d = 0; d < t.ndim_; ++d) {
    int64_t s = shape.begin()[d];
    if (s == -1) {
      assert(infer < 0);
      infer = d;
    } else {
      known *= s;
    }
    t.shape_[d] = s;
  }
  if (infer >= 0) t.shape_[infer] = known == 0 ? 0 : numel() / known;
  int64_t n = 1;
  for (int d = t.ndim_ - 1; d >= 0; --d) {
    t.stride_[d] = n;
    n *= t.shape_[d];
  }
  assert(n == numel());
  return t;
}

Tensor Tensor::narrow(int dim, int64_t start, int64_t length) const {
  int d = norm_dim(dim);
  assert(start >= 0 && length >= 0 && start + length <= shape_[d]);
  Tensor t = *this;
  t.offset_ += start * stride_[d];
  t.shape_[d] = length;
  return t;
}

Tensor Tensor::unflatten_last(int64_t a, int64_t b) const {
  assert(ndim_ < kMaxDims && stride_[ndim_ - 1] == 1 && a * b == shape_[ndim_ - 1]);
  Tensor t = *this;
  t.shape_[ndim_ - 1] = a;
  t.stride_[ndim_ - 1] = b;
  t.shape_[ndim_] = b;
  t.stride_[ndim_] = 1;
  t.ndim_ = ndim_ + 1;
  return t;
}

}  // namespace vela
