#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace vela {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

// Every dtype the safetensors format defines; anything else is a bad header.
bool known_safetensors_dtype(const std::string& name) {
  static const char* kNames[] = {"BOOL", "U8",  "I8",  "I16", "U16", "F16", "BF16", "I32",
                                 "U32",  "F32", "F64", "I64", "U64", "F8_E4M3", "F8_E5M2",
                                 "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64"};
  for (const char* k : kNames)
    if (name == k) return true;
  return false;
}

size_t known_dtype_bits(const std::string& name) {
  if (name == "F64" || name == "I64" || name == "U64" || name == "C64") return 64;
  if (name == "F32" || name == "I32" || name == "U32") return 32;
  if (name == "F16" || name == "BF16" || name == "I16" || name == "U16") return 16;
  if (name == "F4") return 4;
  if (name == "F6_E2M3" || name == "F6_E3M2") return 6;
  return 8;
}

Error header_error(const std::string& path, const std::string& what) {
  return make_error("bad_header", path + ": bad safetensors header: " + what);
}

}  // namespace

Result<std::unique_ptr<MappedFile>> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error("io", path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return make_error("io", path + ": cannot stat: " + std::strerror(err));
  }
  size_t size = size_t(st.st_size);
  const unsigned char* data = nullptr;
  if (size > 0) {
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      return make_error("io", path + ": mmap failed: " + std::strerror(err));
    }
    data = static_cast<const unsigned char*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive
  return std::unique_ptr<MappedFile>(new MappedFile(path, data, size));
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<unsigned char*>(data_), size_bytes_);
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  VELA_TRY_ASSIGN(file->file_, MappedFile::open(path));
  const unsigned char* bytes = file->file_->data();
  size_t size = file->file_->size_bytes();
  if (size < 8)
    return make_error("truncated", path + ": truncated: " + std::to_string(size) +
                                       " bytes, shorter than the 8-byte header length");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | bytes[i];
  if (header_len > kMaxHeaderBytes)
    return header_error(path, "header length " + std::to_string(header_len) + " exceeds 100 MiB");
  if (header_len > size - 8)
    return make_error("truncated", path + ": truncated: header needs " + std::to_string(header_len) +
                                       " bytes but the file has " + std::to_string(size - 8));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes + 8, bytes + 8 + header_len);
  } catch (const nlohmann::json::exception& e) {
    return header_error(path, std::string("not valid JSON: ") + e.what());
  }
  if (!header.is_object()) return header_error(path, "not a JSON object");
  const unsigned char* data_begin = bytes + 8 + header_len;
  size_t data_size = size - 8 - header_len;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") continue;
    const auto& v = it.value();
    std::string where = "tensor '" + name + "': ";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      return header_error(path, where + "needs dtype, shape and data_offsets");
    if (!v["dtype"].is_string()) return header_error(path, where + "dtype is not a string");
    SafetensorsEntry entry;
    entry.dtype_name = v["dtype"].get<std::string>();
    if (!known_safetensors_dtype(entry.dtype_name))
      return make_error("bad_dtype", path + ": tensor '" + name + "': unknown dtype '" + entry.dtype_name + "'");
    const auto& shape = v["shape"];
    if (!shape.is_array()) return header_error(path, where + "shape is not an array");
    uint64_t numel = 1;
    for (const auto& d : shape) {
      if (!d.is_number_unsigned()) return header_error(path, where + "shape holds a non-integer or negative value");
      entry.shape.push_back(d.get<int64_t>());
      numel *= d.get<uint64_t>();
    }
    const auto& offsets = v["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned())
      return header_error(path, where + "data_offsets must be two non-negative integers");
    uint64_t begin = offsets[0].get<uint64_t>();
    uint64_t end = offsets[1].get<uint64_t>();
    if (begin > end) return header_error(path, where + "data_offsets begin > end");
    uint64_t expected = (numel * known_dtype_bits(entry.dtype_name) + 7) / 8;
    if (end - begin != expected) {
      std::ostringstream os;
      os << where << "shape and dtype " << entry.dtype_name << " need " << expected
         << " bytes but data_offsets span " << (end - begin);
      return header_error(path, os.str());
    }
    if (end > data_size)
      return make_error("truncated", path + ": truncated: tensor '" + name + "' ends at data byte " +
                                         std::to_string(end) + " but the file holds " +
                                         std::to_string(data_size) + " data bytes");
    entry.data = data_begin + begin;
    entry.nbytes = size_t(end - begin);
    file->entries_.emplace(name, std::move(entry));
  }
  return file;
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

Result<std::unique_ptr<SafetensorsCheckpoint>> SafetensorsCheckpoint::open(const std::string& dir) {
  namespace fs = std::filesystem;
  auto ckpt = std::unique_ptr<SafetensorsCheckpoint>(new SafetensorsCheckpoint());
  fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  fs::path single_path = fs::path(dir) / "model.safetensors";
  if (fs::exists(index_path)) {
    std::ifstream in(index_path);
    nlohmann::json index;
    try {
      index = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      return make_error("bad_header", index_path.string() + ": not valid JSON: " + e.what());
    }
    if (!index.contains("weight_map") || !index["weight_map"].is_object())
      return make_error("bad_header", index_path.string() + ": no weight_map object");
    std::map<std::string, size_t> file_pos;
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      if (!it.value().is_string())
        return make_error("bad_header", index_path.string() + ": weight_map entry for tensor '" + it.key() +
                                            "' is not a file name");
      std::string file = it.value().get<std::string>();
      if (file.find('/') != std::string::npos || file.find("..") != std::string::npos)
        return make_error("bad_header", index_path.string() + ": tensor '" + it.key() + "' names file '" + file +
                                            "' outside the model directory");
      auto [pos, inserted] = file_pos.emplace(file, ckpt->files_.size());
      if (inserted) {
        VELA_TRY_ASSIGN(auto opened, SafetensorsFile::open((fs::path(dir) / file).string()));
        ckpt->files_.push_back(std::move(opened));
      }
      const auto& shard = ckpt->files_[pos->second];
      if (shard->find(it.key()) == nullptr)
        return make_error("missing_tensor", shard->path() + ": tensor '" + it.key() +
                                                "' listed in model.safetensors.index.json is not in the file");
      ckpt->index_[it.key()] = pos->second;
    }
  } else if (fs::exists(single_path)) {
    VELA_TRY_ASSIGN(auto opened, SafetensorsFile::open(single_path.string()));
    ckpt->files_.push_back(std::move(opened));
    for (const auto& [name, entry] : ckpt->files_[0]->entries()) ckpt->index_[name] = 0;
  } else {
    return make_error("io", dir + ": no model.safetensors or model.safetensors.index.json");
  }
  return ckpt;
}

SafetensorsCheckpoint::Found SafetensorsCheckpoint::find(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) return {};
  const auto& file = files_[it->second];
  return {file->find(name), &file->path()};
}

uint64_t SafetensorsCheckpoint::total_bytes() const {
  uint64_t n = 0;
  for (const auto& f : files_)
    for (const auto& [name, e] : f->entries()) n += e.nbytes;
  return n;
}

std::string SafetensorsCheckpoint::describe_files() const {
  std::string s;
  for (const auto& f : files_) s += (s.empty() ? "" : ", ") + f->path();
  return s;
}

}  // namespace vela
