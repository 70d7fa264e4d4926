#include "app/util/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace metaplast::util {

namespace {

using Clock = std::chrono::steady_clock;

// A pipe whose ends close themselves.
struct Pipe {
  int read = -1, write = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
      throw std::runtime_error("pipe2: " + std::string(std::strerror(errno)));
    read = fds[0];
    write = fds[1];
  }
  ~Pipe() {
    close_read();
    close_write();
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  void close_read() {
    if (read >= 0) ::close(read);
    read = -1;
  }
  void close_write() {
    if (write >= 0) ::close(write);
    write = -1;
  }
};

// Blocks SIGPIPE in this thread for its lifetime; a SIGPIPE raised meanwhile is discarded
// unless one was already pending before.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&pipe_set_);
    sigaddset(&pipe_set_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set_, &old_mask_);
  }
  ~SigpipeGuard() {
    if (!was_pending_) {
      const timespec zero{0, 0};
      while (sigtimedwait(&pipe_set_, nullptr, &zero) == SIGPIPE) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t pipe_set_{}, old_mask_{};
  bool was_pending_ = false;
};

void append_capped(std::string& to, const char* bytes, std::size_t n) {
  if (to.size() < kMaxCapturedBytes) to.append(bytes, std::min(n, kMaxCapturedBytes - to.size()));
}

// Feeds stdin and drains stdout/stderr until both outputs close or the deadline passes.
// Returns false on timeout.
bool pump(Pipe& in, Pipe& out, Pipe& err, const std::string& stdin_bytes, ProcessResult& result,
          std::optional<Clock::time_point> deadline) {
  std::size_t written = 0;
  if (stdin_bytes.empty()) in.close_write();
  if (in.write >= 0) ::fcntl(in.write, F_SETFL, O_NONBLOCK);
  std::array<char, 65536> buf{};
  while (out.read >= 0 || err.read >= 0) {
    std::array<pollfd, 3> fds{};
    nfds_t n = 0;
    auto watch = [&](int fd, short events) {
      if (fd >= 0) fds[n++] = {fd, events, 0};
    };
    watch(out.read, POLLIN);
    watch(err.read, POLLIN);
    watch(in.write, POLLOUT);
    int wait_ms = -1;
    if (deadline) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now());
      if (left.count() <= 0) return false;
      wait_ms = static_cast<int>(std::min<long long>(left.count(), 60'000));
    }
    const int ready = ::poll(fds.data(), n, wait_ms);
    if (ready < 0 && errno != EINTR) return true;  // cannot happen with valid fds; reap below
    if (ready <= 0) continue;
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      const int fd = fds[i].fd;
      if (fd == in.write) {
        const ssize_t w = ::write(fd, stdin_bytes.data() + written, stdin_bytes.size() - written);
        if (w > 0) written += static_cast<std::size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == stdin_bytes.size()) {
          in.close_write();  // done, or the child closed its stdin (EPIPE)
        }
        continue;
      }
      Pipe& p = fd == out.read ? out : err;
      const ssize_t r = ::read(fd, buf.data(), buf.size());
      if (r > 0) {
        append_capped(fd == out.read ? result.out : result.err, buf.data(),
                      static_cast<std::size_t>(r));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        p.close_read();
      }
    }
  }
  return true;
}

// Waits for `pid`; kills it first when `kill_first`. Fills exit_code / signal.
void reap(pid_t pid, bool kill_first, ProcessResult& result,
          std::optional<Clock::time_point> deadline) {
  if (kill_first) ::kill(pid, SIGKILL);
  int status = 0;
  for (;;) {
    // The outputs closed but the child may still run (it closed them itself): keep the deadline.
    const pid_t r = ::waitpid(pid, &status, deadline && !kill_first ? WNOHANG : 0);
    if (r == pid) break;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return;
    if (Clock::now() >= *deadline) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      kill_first = true;
      continue;
    }
    ::usleep(10'000);
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
}

// posix_spawnp with the child's signal mask empty and every signal at its default, in a process
// group of its own when `own_group`. Returns posix_spawnp's error number (0: started).
int spawn(pid_t& pid, std::vector<char*>& args, const posix_spawn_file_actions_t& actions,
          bool own_group) {
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (own_group) {
    posix_spawnattr_setpgroup(&attributes, 0);
    flags |= POSIX_SPAWN_SETPGROUP;
  }
  posix_spawnattr_setflags(&attributes, flags);
  const int rc = ::posix_spawnp(&pid, args[0], &actions, &attributes, args.data(), environ);
  posix_spawnattr_destroy(&attributes);
  return rc;
}

}  // namespace

std::string ProcessResult::describe() const {
  if (!started) return "not started: " + error;
  if (timed_out) return "killed at its deadline (timeout)";
  if (signal != 0)
    return "killed by signal " + std::to_string(signal) + " (" + ::strsignal(signal) + ")";
  return "exit status " + std::to_string(exit_code);
}

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
  if (argv.empty() || argv[0].empty()) {
    throw std::invalid_argument("run_process: empty argument vector (no program to run)");
  }
  ProcessResult result;
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  Pipe in, out, err;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.read, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out.write, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.write, STDERR_FILENO);
  if (!options.working_directory.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, options.working_directory.c_str());
  }
  SigpipeGuard guard;
  pid_t pid = 0;
  const int rc = spawn(pid, args, actions, false);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    result.error = argv[0] + ": " + std::strerror(rc);
    if (!options.working_directory.empty()) {
      result.error += " (working directory " + options.working_directory.string() + ")";
    }
    return result;
  }
  result.started = true;
  in.close_read();
  out.close_write();
  err.close_write();
  std::optional<Clock::time_point> deadline;
  if (options.timeout.count() > 0) deadline = Clock::now() + options.timeout;
  const bool in_time = pump(in, out, err, options.stdin_bytes, result, deadline);
  if (!in_time) result.timed_out = true;
  reap(pid, !in_time, result, deadline);
  return result;
}

BackgroundProcess BackgroundProcess::start(const std::vector<std::string>& argv,
                                           const std::filesystem::path& log_file) {
  if (argv.empty() || argv[0].empty()) {
    throw std::invalid_argument("BackgroundProcess: empty argument vector (no program to run)");
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int log = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) {
    throw std::runtime_error("cannot start " + argv[0] + ": cannot open its log " +
                             log_file.string() + ": " + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, log, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, log, STDERR_FILENO);
  pid_t pid = 0;
  const int rc = spawn(pid, args, actions, true);
  posix_spawn_file_actions_destroy(&actions);
  ::close(log);
  if (rc != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
  return BackgroundProcess(pid);
}

BackgroundProcess::BackgroundProcess(BackgroundProcess&& other) noexcept : pid_(other.pid_) {
  other.pid_ = -1;
}

BackgroundProcess& BackgroundProcess::operator=(BackgroundProcess&& other) noexcept {
  if (this != &other) {
    kill_and_reap();
    pid_ = other.pid_;
    other.pid_ = -1;
  }
  return *this;
}

BackgroundProcess::~BackgroundProcess() { kill_and_reap(); }

void BackgroundProcess::kill_and_reap() {
  if (pid_ <= 0) return;
  ::kill(-pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

std::optional<ProcessResult> BackgroundProcess::poll() {
  if (pid_ <= 0) return std::nullopt;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return std::nullopt;
  ProcessResult result;
  result.started = true;
  if (r == pid_) {
    if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  }
  pid_ = -1;
  return result;
}

void BackgroundProcess::send_signal(int signal) {
  if (pid_ > 0) ::kill(-pid_, signal);
}

std::optional<std::filesystem::path> find_program(std::string_view program) {
  auto executable = [](const std::filesystem::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (program.empty()) return std::nullopt;
  if (program.find('/') != std::string_view::npos) {
    if (executable(std::filesystem::path(program))) return std::filesystem::path(program);
    return std::nullopt;
  }
  const char* path = std::getenv("PATH");
  const std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const std::size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string_view dir = dirs.substr(start, end - start);
    const auto candidate = std::filesystem::path(dir.empty() ? "." : std::string(dir)) / program;
    if (executable(candidate)) return candidate;
    start = end + 1;
  }
  return std::nullopt;
}

}  // namespace metaplast::util
