// A full disk for the tests of output writes: RLIMIT_FSIZE makes write() fail with EFBIG past a
// size, as a disk filling up would, for this process and every program it starts.
// Header-only, like process.hpp next to it.
#pragma once

#include <signal.h>
#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace metaplast::test {

// Runs `write` with regular-file writes limited to `bytes` per file; the message of what it
// threw, "" if nothing.
inline std::string with_file_size_limit(rlim_t bytes, const std::function<void()>& write) {
  rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
  const auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = bytes;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  std::string error;
  try {
    write();
  } catch (const std::exception& e) {
    error = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, old_handler);
  return error;
}

// Files under `dir` (recursively) whose name holds ".tmp": what a failed write left behind.
inline std::vector<std::string> temporaries(const std::filesystem::path& dir) {
  std::vector<std::string> found;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp") != std::string::npos) {
      found.push_back(e.path().string());
    }
  }
  return found;
}

}  // namespace metaplast::test
