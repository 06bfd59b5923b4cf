#include "transport/step_channel.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace vela::transport {
namespace {

size_t page_round(size_t n) { return (n + 4095) / 4096 * 4096; }

Error sys_error(const std::string& what) {
  return make_error("step_channel", "step channel: " + what + ": " + std::strerror(errno));
}

}  // namespace

StepChannel::~StepChannel() {
  if (mem_) ::munmap(mem_, size_);
  if (memfd_ >= 0) ::close(memfd_);
  for (int fd : down_fds_)
    if (fd >= 0) ::close(fd);
  if (up_fd_ >= 0) ::close(up_fd_);
}

Status StepChannel::map(size_t size) {
  mem_ = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd_, 0);
  if (mem_ == MAP_FAILED) {
    mem_ = nullptr;
    return sys_error("mmap of " + std::to_string(size) + " bytes");
  }
  size_ = size;
  return ok_status();
}

Result<std::unique_ptr<StepChannel>> StepChannel::create(int32_t world_size, uint32_t slots, uint64_t slot_bytes) {
  if (world_size < 1 || world_size > static_cast<int32_t>(ShmRing::kMaxReaders))
    return make_error("step_channel", "step channel: world size " + std::to_string(world_size) + " out of range");
  std::unique_ptr<StepChannel> c(new StepChannel());
  c->is_engine_ = true;
  const size_t down_bytes = page_round(ShmRing::region_bytes(static_cast<uint32_t>(world_size), slots, slot_bytes));
  const size_t up_bytes = page_round(ShmRing::region_bytes(1, slots, slot_bytes));
  c->memfd_ = ::memfd_create("vela-step-channel", MFD_CLOEXEC);
  if (c->memfd_ < 0) return sys_error("memfd_create");
  if (::ftruncate(c->memfd_, static_cast<off_t>(down_bytes + up_bytes)) != 0) return sys_error("ftruncate");
  VELA_TRY(c->map(down_bytes + up_bytes));
  VELA_TRY_ASSIGN(c->down_, ShmRing::format(c->mem_, down_bytes, static_cast<uint32_t>(world_size), slots, slot_bytes));
  VELA_TRY_ASSIGN(c->up_, ShmRing::format(static_cast<char*>(c->mem_) + down_bytes, up_bytes, 1, slots, slot_bytes));
  for (int32_t r = 0; r < world_size; ++r) {
    const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return sys_error("eventfd");
    c->down_fds_.push_back(fd);
  }
  c->up_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (c->up_fd_ < 0) return sys_error("eventfd");
  c->down_.set_wake_fds(c->down_fds_);
  return c;
}

std::vector<int> StepChannel::worker_fds(int32_t rank) const {
  return {memfd_, down_fds_.at(static_cast<size_t>(rank)), up_fd_};
}

std::string StepChannel::worker_spec(int32_t rank) const {
  return std::to_string(memfd_) + ":" + std::to_string(down_fds_.at(static_cast<size_t>(rank))) + ":" +
         std::to_string(up_fd_);
}

Result<std::unique_ptr<StepChannel>> StepChannel::attach(const std::string& spec, int32_t rank) {
  int memfd = -1, down_fd = -1, up_fd = -1;
  char tail = 0;
  if (std::sscanf(spec.c_str(), "%d:%d:%d%c", &memfd, &down_fd, &up_fd, &tail) != 3 || memfd < 0 || down_fd < 0 ||
      up_fd < 0)
    return make_error("step_channel", "step channel: bad spec '" + spec + "' (expected MEMFD:DOWNFD:UPFD)");
  // Inherited without close-on-exec; this process starts nothing that should keep them.
  for (int fd : {memfd, down_fd, up_fd}) (void)::fcntl(fd, F_SETFD, FD_CLOEXEC);
  std::unique_ptr<StepChannel> c(new StepChannel());
  c->memfd_ = memfd;
  c->down_fds_ = {down_fd};
  c->up_fd_ = up_fd;
  struct stat st{};
  if (::fstat(memfd, &st) != 0) return sys_error("fd " + std::to_string(memfd) + " (the shared memory)");
  VELA_TRY(c->map(static_cast<size_t>(st.st_size)));
  VELA_TRY_ASSIGN(c->down_, ShmRing::attach(c->mem_, c->size_));
  const ShmRing& down = c->down_;
  const size_t down_bytes = page_round(ShmRing::region_bytes(down.readers(), down.slots(), down.slot_bytes()));
  if (down_bytes >= c->size_) return make_error("step_channel", "step channel: region holds no up ring");
  VELA_TRY_ASSIGN(c->up_, ShmRing::attach(static_cast<char*>(c->mem_) + down_bytes, c->size_ - down_bytes));
  if (rank < 0 || static_cast<uint32_t>(rank) >= down.readers())
    return make_error("step_channel", "step channel: rank " + std::to_string(rank) + " but the ring has " +
                                          std::to_string(down.readers()) + " readers");
  c->up_.set_wake_fds({up_fd});
  c->reader_ = static_cast<uint32_t>(rank);
  return c;
}

}  // namespace vela::transport
