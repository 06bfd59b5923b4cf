#pragma once
// Safetensors files, read through mmap: an 8-byte little-endian header length, a
// JSON header {name: {dtype, shape, data_offsets}}, then the raw data. Every
// header field is validated on open so a bad file fails with the file and the
// tensor named, before any weight is read.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "model/dtype.h"

namespace vela {

// A read-only memory map of a whole file.
class MappedFile {
 public:
  static Result<std::unique_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const unsigned char* data() const { return data_; }
  size_t size_bytes() const { return size_bytes_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const unsigned char* data, size_t size_bytes)
      : path_(std::move(path)), data_(data), size_bytes_(size_bytes) {}
  std::string path_;
  const unsigned char* data_;
  size_t size_bytes_;
};

struct SafetensorsEntry {
  std::string dtype_name;          // as written ("BF16"); may be a type we cannot convert
  std::vector<int64_t> shape;
  const unsigned char* data = nullptr;  // inside the mapping
  size_t nbytes = 0;
};

class SafetensorsFile {
 public:
  static Result<std::unique_ptr<SafetensorsFile>> open(const std::string& path);
  const std::string& path() const { return file_->path(); }
  const SafetensorsEntry* find(const std::string& name) const;
  const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }

 private:
  std::unique_ptr<MappedFile> file_;
  std::map<std::string, SafetensorsEntry> entries_;
};

// A checkpoint directory: model.safetensors, or shards listed by
// model.safetensors.index.json ({"weight_map": {tensor: file}}).
class SafetensorsCheckpoint {
 public:
  static Result<std::unique_ptr<SafetensorsCheckpoint>> open(const std::string& dir);
  struct Found {
    const SafetensorsEntry* entry = nullptr;
    const std::string* file = nullptr;
  };
  // entry == nullptr when absent; file is then the file the index named (or null).
  Found find(const std::string& name) const;
  std::string describe_files() const;  // for "missing tensor" errors
  uint64_t total_bytes() const;         // of every tensor (a progress bar's total)

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> index_;  // tensor -> files_ position
};

}  // namespace vela
