#pragma once
// Tensor: shape, strides, dtype, device and a shared storage; views share the
// storage. Deliberately minimal: enough for the model's ops (which want the last
// dimension contiguous), not a general tensor library. Up to 4 dimensions so a
// Tensor never allocates for its shape.
#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>

#include "model/dtype.h"

namespace vela {

enum class DeviceType : uint8_t { kCPU, kCUDA };

struct Device {
  DeviceType type = DeviceType::kCPU;
  int32_t index = 0;
  bool operator==(const Device&) const = default;
  static Device cpu() { return {}; }
};

// A block of bytes on one device. Owns them (freed with its deleter) or borrows them.
class Storage {
 public:
  using Deleter = void (*)(void*);
  Storage(void* data, size_t nbytes, Device device, Deleter deleter)
      : data_(data), nbytes_(nbytes), device_(device), deleter_(deleter) {}
  ~Storage() { if (deleter_ != nullptr) deleter_(data_); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

  // Zero-filled. Throws std::bad_alloc (on CUDA its what() names the device and
  // the free memory) when the device is out of memory.
  // zero = false: device memory is left uninitialised (host memory is zeroed anyway).
  static std::shared_ptr<Storage> allocate(size_t nbytes, Device device, bool zero = true);
  static std::shared_ptr<Storage> borrow(void* data, size_t nbytes, Device device);

 private:
  void* data_;
  size_t nbytes_;
  Device device_;
  Deleter deleter_;
};

class Tensor {
 public:
  static constexpr int kMaxDims = 4;
  using Dims = std::array<int64_t, kMaxDims>;

  Tensor() = default;
  // A fresh zero-filled contiguous tensor.
  static Tensor zeros(std::initializer_list<int64_t> shape, DType dtype, Device device = Device::cpu());
  static Tensor zeros(const int64_t* shape, int ndim, DType dtype, Device device = Device::cpu());
  // Contiguous, contents unspecified on a device (zero on the host): for a tensor
  // that is about to be written whole.
  static Tensor empty(const int64_t* shape, int ndim, DType dtype, Device device);
  // A contiguous 1-D tensor over a storage (which it keeps alive).
  static Tensor wrap(std::shared_ptr<Storage> storage, std::initializer_list<int64_t> shape, DType dtype);
  // A contiguous view of memory the caller keeps alive.
  static Tensor from_blob(void* data, std::initializer_list<int64_t> shape, DType dtype,
                          Device device = Device::cpu());

  bool defined() const { return storage_ != nullptr; }
  int ndim() const { return ndim_; }
  int64_t size(int dim) const { return shape_[norm_dim(dim)]; }
  int64_t stride(int dim) const { return stride_[norm_dim(dim)]; }
  const int64_t* shape() const { return shape_.data(); }
  int64_t numel() const;
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device() : Device::cpu(); }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype_); }
  bool is_contiguous() const;
  std::string shape_string() const;  // "[3, 64]"

  void* raw_data() const {
    return static_cast<char*>(storage_->data()) + offset_ * int64_t(dtype_size(dtype_));
  }
  template <class T>
  T* data() const {
    assert(dtype_size(dtype_) == sizeof(T));
    return static_cast<T*>(raw_data());
  }

  // Views (share storage). view() needs a contiguous tensor; -1 infers one dim.
  Tensor view(std::initializer_list<int64_t> shape) const;
  // Elements [start, start + length) of dimension dim.
  Tensor narrow(int dim, int64_t start, int64_t length) const;
  // Splits the last dimension in two: [..., a*b] -> [..., a, b] (last dim must be contiguous).
  Tensor unflatten_last(int64_t a, int64_t b) const;

 private:
  static Tensor allocate_contiguous(const int64_t* shape, int ndim, DType dtype, Device device, bool zero);
  int norm_dim(int dim) const {
    int d = dim < 0 ? dim + ndim_ : dim;
    assert(d >= 0 && d < ndim_);
    return d;
  }
  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;  // in elements
  Dims shape_{};
  Dims stride_{};
  int ndim_ = 0;
  DType dtype_ = DType::kF32;
};

}  // namespace vela
