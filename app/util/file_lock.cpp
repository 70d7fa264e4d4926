#include "app/util/file_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace metaplast::util {

namespace {

int open_lock_file(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::runtime_error("cannot open lock file " + file.string() + ": " +
                             std::strerror(errno));
  }
  return fd;
}

// flock() with EINTR retried; returns errno (0 on success).
int lock(int fd, int operation) {
  for (;;) {
    if (::flock(fd, operation) == 0) return 0;
    if (errno != EINTR) return errno;
  }
}

}  // namespace

FileLock FileLock::acquire(const std::filesystem::path& file) {
  const int fd = open_lock_file(file);
  if (const int error = lock(fd, LOCK_EX); error != 0) {
    ::close(fd);
    throw std::runtime_error("cannot lock " + file.string() + ": " + std::strerror(error));
  }
  return FileLock(fd);
}

std::optional<FileLock> FileLock::try_acquire(const std::filesystem::path& file) {
  const int fd = open_lock_file(file);
  const int error = lock(fd, LOCK_EX | LOCK_NB);
  if (error == 0) return FileLock(fd);
  ::close(fd);
  if (error == EWOULDBLOCK) return std::nullopt;
  throw std::runtime_error("cannot lock " + file.string() + ": " + std::strerror(error));
}

FileLock::FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the lock
}

}  // namespace metaplast::util
