// Running another program (gnuplot, git) without a shell: the program and its arguments are an
// argument vector handed to posix_spawnp, so no string from a user, a file or a board is ever
// parsed by /bin/sh (docs/architecture.md "External programs").
//
// Contract of run_process():
//   - argv[0] is looked up on PATH (or used as is when it contains a '/'); nothing is quoted or
//     expanded, an argument may hold any byte but NUL.
//   - stdin: the child reads `stdin_bytes` and then end of file (never the caller's terminal).
//     stdout and stderr are captured separately, each up to kMaxCapturedBytes (the rest is read
//     and dropped, so a chatty child never blocks on a full pipe).
//   - working_directory: the child's current directory (empty: the caller's).
//   - timeout: a child still running after it is killed (SIGKILL) and reaped; the result says
//     timed_out. Zero means no deadline. The call never returns before the child is reaped.
//   - The child starts with the default signal mask and dispositions; file descriptors of the
//     caller are not inherited (every descriptor this runner opens is close-on-exec, the rest is
//     the caller's business: open files with O_CLOEXEC).
//   - Errors: nothing throws for the child's behaviour; a program that cannot be started
//     (not found, not executable) gives started == false and `error` saying why. Only
//     std::invalid_argument for an empty argv and std::bad_alloc can escape.
//
// Thread safety: run_process() may be called from several threads at once; SIGPIPE raised by
// writing to a child that closed its stdin is blocked in the calling thread and discarded.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace metaplast::util {

inline constexpr std::size_t kMaxCapturedBytes = 1 << 20;

struct ProcessOptions {
  std::string stdin_bytes;                  // written to the child's stdin, then EOF
  std::filesystem::path working_directory;  // empty: the caller's
  std::chrono::milliseconds timeout{0};     // 0: wait for ever
};

struct ProcessResult {
  bool started = false;    // false: could not be started (see `error`)
  bool timed_out = false;  // killed after ProcessOptions::timeout
  int exit_code = -1;      // exit status when it exited normally, else -1
  int signal = 0;          // the signal that ended it, else 0
  std::string out, err;    // captured stdout / stderr (each at most kMaxCapturedBytes)
  std::string error;       // why it did not start

  // Started, exited by itself with status 0.
  bool ok() const { return started && !timed_out && signal == 0 && exit_code == 0; }
  // One line for an error message: "exit status 1", "killed after 30 s (timeout)",
  // "not started: gnuplot: No such file or directory", ...
  std::string describe() const;
};

// Runs argv[0] with arguments argv[1..] (see the contract above).
ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options = {});

// The full path of an executable regular file named `program` on PATH (or `program` itself when
// it contains a '/' and is executable); nullopt when there is none.
std::optional<std::filesystem::path> find_program(std::string_view program);

// A child that runs alongside its caller (campaign run --jobs), started as run_process starts
// one (an argument vector, no shell, default signal dispositions, no inherited descriptors) but
// not waited for: stdin is /dev/null, stdout and stderr are appended to `log_file`, and the
// child leads a process group of its own, so a Ctrl-C typed on the terminal reaches only the
// caller, which passes it on with send_signal(). A child still running when the object is
// destroyed is killed (SIGKILL) and reaped.
class BackgroundProcess {
 public:
  // Throws std::runtime_error saying why when it cannot be started (program not found, log file
  // not writable).
  static BackgroundProcess start(const std::vector<std::string>& argv,
                                 const std::filesystem::path& log_file);

  BackgroundProcess(BackgroundProcess&& other) noexcept;
  BackgroundProcess& operator=(BackgroundProcess&& other) noexcept;
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;
  ~BackgroundProcess();

  pid_t pid() const { return pid_; }
  // The result once the child has ended (reaped here), nullopt while it runs. Never blocks.
  std::optional<ProcessResult> poll();
  // Sends `signal` to the child's process group (nothing once it has ended).
  void send_signal(int signal);

 private:
  explicit BackgroundProcess(pid_t pid) : pid_(pid) {}
  void kill_and_reap();
  pid_t pid_ = -1;  // -1 once reaped
};

}  // namespace metaplast::util
