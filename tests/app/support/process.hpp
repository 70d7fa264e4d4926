// Helpers shared by the app tests that run the real binaries (metaplast, metaplast-simboard):
// scratch paths, whole-file reads, spawning a process with its output in a log, waiting for it.
// Header-only: tests/CMakeLists.txt makes every test_*.cpp an executable.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace metaplast::test {

// A path under the temp directory unique to this test process ("<prefix>-<pid>-<name>"), removed
// first so each run starts empty.
inline std::filesystem::path scratch_path(const std::string& prefix, const std::string& name) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    (prefix + "-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::remove_all(dir);
  return dir;
}

// The whole file ("" when it does not exist).
inline std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Starts `binary` with argv `args` (args[0] included), stdout and stderr to `log` (truncated).
inline pid_t spawn(const std::string& binary, const std::vector<std::string>& args,
                   const std::filesystem::path& log) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(rc == 0);
  return pid;
}

// How the child `pid` ended, if it has ("exit status 1", "signal 6"), without reaping it: the
// caller's wait_exit(pid) still works.
inline std::optional<std::string> ended(pid_t pid) {
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
      info.si_pid != pid) {
    return std::nullopt;
  }
  return info.si_code == CLD_EXITED ? "exit status " + std::to_string(info.si_status)
                                    : "signal " + std::to_string(info.si_status);
}

// Waits until `file` exists while the child `pid` (its output in `log`) runs. "" once the file
// is there; else why not: the child ended first (how, and its whole output) or `timeout` passed.
// A child that fails at once is reported at once, not after the timeout.
inline std::string wait_for_file(const std::filesystem::path& file, pid_t pid,
                                 const std::filesystem::path& log,
                                 std::chrono::seconds timeout = std::chrono::seconds(180)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (std::filesystem::exists(file)) return "";
    if (const auto how = ended(pid)) {
      if (std::filesystem::exists(file)) return "";
      return "the child ended (" + *how + ") before writing " + file.string() + "; its output:\n" +
             read_file(log);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return "no " + file.string() + " after " + std::to_string(timeout.count()) +
             " s; the child's output so far:\n" + read_file(log);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// Waits until the child's output in `log` contains `text` (fails fast as wait_for_file does).
// Returns "" when it does, else what went wrong with the child's output.
inline std::string wait_for_output(const std::string& text, pid_t pid,
                                   const std::filesystem::path& log,
                                   std::chrono::seconds timeout = std::chrono::seconds(300)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (read_file(log).find(text) != std::string::npos) return "";
    if (const auto how = ended(pid)) {
      if (read_file(log).find(text) != std::string::npos) return "";
      return "the child ended (" + *how + ") before printing \"" + text + "\"; its output:\n" +
             read_file(log);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return "no \"" + text + "\" after " + std::to_string(timeout.count()) +
             " s; the child's output so far:\n" + read_file(log);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// REQUIREs that `file` appears while the child runs (see wait_for_file), failing with the
// child's output.
#define METAPLAST_REQUIRE_FILE_FROM_CHILD(file, pid, log)                                    \
  do {                                                                                       \
    const std::string metaplast_wait_error = metaplast::test::wait_for_file(file, pid, log); \
    INFO(metaplast_wait_error);                                                              \
    REQUIRE(metaplast_wait_error.empty());                                                   \
  } while (false)

// The exit code of a waitpid status, -1 when the process did not exit normally.
inline int exit_status(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }

// Waits for `pid` to end; its exit code (-1 when killed by a signal).
inline int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return exit_status(status);
}

// Runs `args` (args[0]: the binary) to the end, stdout and stderr to `log`, with no shell in
// between: any argument (an apostrophe, "$(...)") reaches the program as it is. Its exit code
// (-1 when killed by a signal).
inline int run(const std::vector<std::string>& args, const std::filesystem::path& log) {
  REQUIRE_FALSE(args.empty());
  return wait_exit(spawn(args[0], args, log));
}

}  // namespace metaplast::test
