#include "common/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace metaplast::common {
namespace {

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& step, int error) {
  std::string advice = "check that the directory exists and is writable";
  if (error == ENOSPC || error == EDQUOT) advice = "free some space on that disk and run again";
  throw std::runtime_error("cannot write " + path.string() + ": " + step + " failed (" +
                           std::strerror(error) + "); " + advice);
}

// Writes the temporary file; returns 0 or the errno of the first failing step (named in `step`).
int write_temporary(const std::filesystem::path& temporary, std::string_view bytes,
                    Durability durability, std::string& step) {
  step = "create";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  int error = 0;
  step = "write";
  std::size_t done = 0;
  while (error == 0 && done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno != EINTR) error = errno;
    if (n > 0) done += static_cast<std::size_t>(n);
  }
  if (error == 0 && durability == Durability::power_loss && ::fsync(fd) != 0) {
    step = "fsync";
    error = errno;
  }
  // close() reports delayed write errors (NFS, some quotas).
  if (::close(fd) != 0 && error == 0) {
    step = "close";
    error = errno;
  }
  return error;
}

}  // namespace

void write_file_atomically(const std::filesystem::path& path, std::string_view bytes,
                           Durability durability) {
  const std::filesystem::path temporary =
      path.string() + ".tmp" + std::to_string(static_cast<long>(::getpid()));
  std::string step;
  int error = write_temporary(temporary, bytes, durability, step);
  if (error == 0 && ::rename(temporary.c_str(), path.c_str()) != 0) {
    step = "rename";
    error = errno;
  }
  if (error != 0) {
    ::unlink(temporary.c_str());
    fail(path, step, error);
  }
  if (durability != Durability::power_loss) return;
  // The rename is durable only once the directory entry is.
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) fail(path, "open of its directory", errno);
  const int synced = ::fsync(dir_fd);
  error = errno;
  ::close(dir_fd);
  if (synced != 0) fail(path, "fsync of its directory", error);
}

}  // namespace metaplast::common
