// Internal to drivers/: waiting on a file descriptor with a deadline and a wake-up eventfd.
#pragma once

#include <optional>
#include <string>

#include "drivers/transport.hpp"

namespace metaplast::drivers::detail {

enum class FdReady {
  ready,        // the requested event
  hangup,       // POLLHUP/POLLERR/POLLNVAL (maybe with data still queued: read it, then closed)
  timeout,      // the deadline passed
  interrupted,  // the wake-up eventfd was signalled (close() in progress)
  error,        // poll() itself failed; errno_out says why
};

// Waits until `fd` has `events` (POLLIN or POLLOUT), the deadline, or `wake_fd` (-1: none) is
// signalled. Restarts on EINTR. Returns at once if the deadline is in the past and nothing is
// ready.
FdReady wait_fd(int fd, short events, int wake_fd, Deadline deadline, int* errno_out = nullptr);

// wait_fd for the I/O loop of a Transport's do_read (events POLLIN) or do_write (POLLOUT):
// std::nullopt means "try the I/O again" (ready, or hang-up, which also sets *saw_hangup so the
// caller can report closed once nothing more comes); otherwise the result to return: timeout,
// closed (close() in progress) or error (poll failed), with messages starting with `label`.
std::optional<IoResult> wait_for_io(int fd, short events, int wake_fd, Deadline deadline,
                                    const std::string& label, bool* saw_hangup);

// A non-blocking, close-on-exec eventfd; throws TransportError on failure.
int make_wake_fd();
// Signals `wake_fd` (never blocks; -1 ignored).
void signal_wake_fd(int wake_fd);
// close() if >= 0, then sets it to -1.
void close_fd(int& fd);

// "what: strerror(err)".
std::string errno_message(const std::string& what, int err);

}  // namespace metaplast::drivers::detail
