#include "drivers/pseudo_terminal.hpp"

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "drivers/detail/fd_wait.hpp"

namespace metaplast::drivers {

using detail::errno_message;

struct PseudoTerminal::Opened {
  int master_fd = -1;
  int slave_fd = -1;
  std::string slave_path;
};

PseudoTerminal::Opened PseudoTerminal::open_pty() {
  struct Guard {
    int master = -1, slave = -1;
    ~Guard() {
      detail::close_fd(master);
      detail::close_fd(slave);
    }
  } guard;
  guard.master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (guard.master < 0)
    throw TransportError(errno_message("pseudo-terminal: posix_openpt failed", errno));
  if (::grantpt(guard.master) != 0)
    throw TransportError(errno_message("pseudo-terminal: grantpt failed", errno));
  if (::unlockpt(guard.master) != 0)
    throw TransportError(errno_message("pseudo-terminal: unlockpt failed", errno));
  char name[128];
  if (::ptsname_r(guard.master, name, sizeof name) != 0) {
    throw TransportError(errno_message("pseudo-terminal: ptsname_r failed", errno));
  }
  // Hold the slave open (see the header): the master then never sees a hang-up between hosts.
  guard.slave = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (guard.slave < 0) {
    throw TransportError(errno_message(std::string("pseudo-terminal: cannot open ") + name, errno));
  }
  // Raw mode on the line (termios is per terminal, so this is what the host sees until it
  // configures the port itself): no echo, no canonical mode, no CR/LF mapping, 8 bits.
  termios tio{};
  if (::tcgetattr(guard.slave, &tio) != 0) {
    throw TransportError(errno_message("pseudo-terminal: tcgetattr failed", errno));
  }
  ::cfmakeraw(&tio);
  tio.c_cc[VMIN] = 1;
  tio.c_cc[VTIME] = 0;
  if (::tcsetattr(guard.slave, TCSANOW, &tio) != 0) {
    throw TransportError(errno_message("pseudo-terminal: tcsetattr failed", errno));
  }
  const int flags = ::fcntl(guard.master, F_GETFL);
  if (flags < 0 || ::fcntl(guard.master, F_SETFL, flags | O_NONBLOCK) != 0) {
    throw TransportError(errno_message("pseudo-terminal: cannot make master non-blocking", errno));
  }
  PseudoTerminal::Opened opened{guard.master, guard.slave, name};
  guard.master = guard.slave = -1;
  return opened;
}

PseudoTerminal::PseudoTerminal() : PseudoTerminal(open_pty()) {}

PseudoTerminal::PseudoTerminal(Opened opened)
    : Transport("pty-master:" + opened.slave_path),
      master_fd_(opened.master_fd),
      slave_keepalive_fd_(opened.slave_fd),
      slave_path_(std::move(opened.slave_path)) {
  try {
    wake_fd_ = detail::make_wake_fd();
  } catch (...) {
    detail::close_fd(master_fd_);
    detail::close_fd(slave_keepalive_fd_);
    throw;
  }
}

PseudoTerminal::~PseudoTerminal() { close(); }

std::string PseudoTerminal::client_address(int baud) const {
  return "serial:" + slave_path_ + "?baud=" + std::to_string(baud);
}

IoResult PseudoTerminal::do_write(std::span<const std::uint8_t> bytes, Deadline deadline) {
  bool saw_hangup = false;
  while (true) {
    const ssize_t n = ::write(master_fd_, bytes.data(), bytes.size());
    if (n >= 0) return {IoStatus::ok, static_cast<std::size_t>(n), {}};
    if (errno == EINTR) continue;
    if (errno == EIO) return {IoStatus::closed, 0, "pty " + slave_path_ + ": hung up"};
    if (saw_hangup) return {IoStatus::closed, 0, "pty " + slave_path_ + ": hung up"};
    if (errno != EAGAIN) {
      return {IoStatus::error, 0, errno_message("pty " + slave_path_ + ": write failed", errno)};
    }
    if (auto result = detail::wait_for_io(master_fd_, POLLOUT, wake_fd_, deadline,
                                          "pty " + slave_path_, &saw_hangup)) {
      return *result;
    }
  }
}

IoResult PseudoTerminal::do_read(std::span<std::uint8_t> buffer, Deadline deadline) {
  bool saw_hangup = false;
  while (true) {
    const ssize_t n = ::read(master_fd_, buffer.data(), buffer.size());
    if (n > 0) return {IoStatus::ok, static_cast<std::size_t>(n), {}};
    if (n == 0) return {IoStatus::closed, 0, "pty " + slave_path_ + ": end of file"};
    if (errno == EINTR) continue;
    if (errno == EIO) return {IoStatus::closed, 0, "pty " + slave_path_ + ": hung up"};
    if (saw_hangup) return {IoStatus::closed, 0, "pty " + slave_path_ + ": hung up"};
    if (errno != EAGAIN) {
      return {IoStatus::error, 0, errno_message("pty " + slave_path_ + ": read failed", errno)};
    }
    if (auto result = detail::wait_for_io(master_fd_, POLLIN, wake_fd_, deadline,
                                          "pty " + slave_path_, &saw_hangup)) {
      return *result;
    }
  }
}

void PseudoTerminal::do_flush() { ::tcflush(master_fd_, TCIFLUSH); }

void PseudoTerminal::do_interrupt() { detail::signal_wake_fd(wake_fd_); }

void PseudoTerminal::do_close() {
  detail::close_fd(slave_keepalive_fd_);
  detail::close_fd(master_fd_);
  detail::close_fd(wake_fd_);
}

}  // namespace metaplast::drivers
