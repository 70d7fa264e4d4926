// An exclusive lock on a file (flock), held for the object's lifetime and released by the kernel
// when the process ends however it ends (kill -9, crash, node reboot of a local file system).
// Campaign runs take it on their run directory's record while they update it, and on a step
// while they run it, so several processes (campaign run --jobs, Slurm array tasks) share one run
// directory safely (docs/cluster.md "Shared file system").
#pragma once

#include <filesystem>
#include <optional>

namespace metaplast::util {

class FileLock {
 public:
  // Waits until the lock on `file` (created if absent) is free, then holds it. Throws
  // std::runtime_error naming the file when it cannot be opened or locked.
  static FileLock acquire(const std::filesystem::path& file);
  // Holds the lock if it is free now; nullopt when another process (or another FileLock of this
  // process) holds it. Throws as acquire() for other failures.
  static std::optional<FileLock> try_acquire(const std::filesystem::path& file);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace metaplast::util
