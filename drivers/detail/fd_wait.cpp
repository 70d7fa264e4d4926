#include "drivers/detail/fd_wait.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace metaplast::drivers::detail {

FdReady wait_fd(int fd, short events, int wake_fd, Deadline deadline, int* errno_out) {
  while (true) {
    pollfd fds[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
    const nfds_t count = wake_fd >= 0 ? 2 : 1;
    const auto remaining = deadline - SteadyClock::now();
    // Round up so we never wake just before the deadline and spin; cap to keep int in range.
    const auto remaining_ms = std::chrono::ceil<std::chrono::milliseconds>(remaining).count();
    const int timeout_ms = static_cast<int>(std::clamp<std::int64_t>(remaining_ms, 0, 1 << 30));
    const int n = ::poll(fds, count, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno_out) *errno_out = errno;
      return FdReady::error;
    }
    if (count == 2 && (fds[1].revents & POLLIN)) return FdReady::interrupted;
    // Hang-up first: a hung-up tty also reports POLLIN but reads 0 bytes, which would spin.
    if (fds[0].revents & (POLLHUP | POLLERR | POLLNVAL)) return FdReady::hangup;
    if (fds[0].revents & events) return FdReady::ready;
    if (SteadyClock::now() >= deadline) return FdReady::timeout;
  }
}

std::optional<IoResult> wait_for_io(int fd, short events, int wake_fd, Deadline deadline,
                                    const std::string& label, bool* saw_hangup) {
  int err = 0;
  switch (wait_fd(fd, events, wake_fd, deadline, &err)) {
    case FdReady::ready:
      return std::nullopt;
    case FdReady::hangup:
      *saw_hangup = true;
      return std::nullopt;
    case FdReady::timeout:
      return IoResult{IoStatus::timeout, 0,
                      label + (events == POLLIN ? ": read timed out" : ": write timed out")};
    case FdReady::interrupted:
      return IoResult{IoStatus::closed, 0, label + " is closed"};
    case FdReady::error:
      break;
  }
  return IoResult{IoStatus::error, 0, errno_message(label + ": poll failed", err)};
}

int make_wake_fd() {
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throw TransportError(errno_message("eventfd for transport wake-up failed", errno));
  return fd;
}

void signal_wake_fd(int wake_fd) {
  if (wake_fd < 0) return;
  const std::uint64_t one = 1;
  // A full counter (EAGAIN) still leaves the eventfd readable, which is all we need.
  [[maybe_unused]] const auto n = ::write(wake_fd, &one, sizeof one);
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

std::string errno_message(const std::string& what, int err) {
  return what + ": " + std::strerror(err);
}

}  // namespace metaplast::drivers::detail
