#include "drivers/serial_transport.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <libserialport.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <filesystem>
#include <system_error>

#include "common/enum_names.hpp"
#include "drivers/detail/fd_wait.hpp"

// ---------------------------------------------------------------------------------------------
// Pseudo-terminal quirk. libserialport 0.1.1 reads the modem lines (TIOCMGET) in every
// sp_open()/sp_set_*() and sets RTS/DTR (TIOCMBIS/TIOCMBIC) with some flow settings. Linux
// pseudo-terminals have no modem lines and answer ENOTTY, so libserialport refuses to open
// /dev/pts/N. We keep libserialport as the serial driver (the simulated board must be reached
// through the same code as a USB board) by interposing ioctl(): the real ioctl runs first, and
// only when it fails with ENOTTY, for a modem-line request, on a pty slave (Unix98 majors
// 136..143), do we report success with all lines asserted (a null-modem cable). Every other call,
// and every real serial port, sees the real ioctl unchanged. The definition lives in this file so
// it is linked whenever SerialTransport is; libserialport.so binds to it because the executable
// exports symbols that shared libraries in the link reference.
namespace {
// A Unix98 pseudo-terminal slave (majors 136..143). Keeps errno.
bool is_pty_slave(int fd) {
  const int saved_errno = errno;
  struct stat status {};
  const bool pty = ::fstat(fd, &status) == 0 && S_ISCHR(status.st_mode) &&
                   major(status.st_rdev) >= 136 && major(status.st_rdev) <= 143;
  errno = saved_errno;
  return pty;
}
}  // namespace

extern "C" int ioctl(int fd, unsigned long request, ...) noexcept {
  va_list args;
  va_start(args, request);
  void* argument = va_arg(args, void*);
  va_end(args);
  using IoctlFn = int (*)(int, unsigned long, void*);
  static const auto real_ioctl = reinterpret_cast<IoctlFn>(::dlsym(RTLD_NEXT, "ioctl"));
  if (real_ioctl == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  const int result = real_ioctl(fd, request, argument);
  if (result >= 0 || errno != ENOTTY) return result;
  const bool modem_line_request =
      request == TIOCMGET || request == TIOCMSET || request == TIOCMBIS || request == TIOCMBIC;
  if (!modem_line_request || !is_pty_slave(fd)) return result;
  if (request == TIOCMGET && argument != nullptr) {
    *static_cast<int*>(argument) = TIOCM_DTR | TIOCM_RTS | TIOCM_CTS | TIOCM_DSR | TIOCM_CD;
  }
  return 0;
}

namespace metaplast::drivers {

namespace {

namespace fs = std::filesystem;
using detail::errno_message;

std::string sp_error_text() {
  char* text = sp_last_error_message();
  std::string message = text ? text : "unknown libserialport error";
  sp_free_error_message(text);
  while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) message.pop_back();
  return message;
}

constexpr auto kFlowNames = common::enum_table<FlowControl>({{FlowControl::none, "none"},
                                                             {FlowControl::rts_cts, "rtscts"},
                                                             {FlowControl::xon_xoff, "xonxoff"}});

const char* flow_name(FlowControl flow) { return common::enum_name(kFlowNames, flow); }

}  // namespace

std::unique_ptr<SerialTransport> SerialTransport::open(const Address& address) {
  const SerialSettings settings = settings_for(address);
  return std::make_unique<SerialTransport>(address.target, settings);
}

SerialSettings SerialTransport::settings_for(const Address& address) {
  const std::string example = "serial:/dev/ttyUSB0?baud=921600&flow=none";
  address.expect_only({"baud", "flow"});
  if (address.target.empty()) address.fail("missing the port path after 'serial:'", example);
  if (address.target.front() != '/') {
    address.fail("the port must be an absolute path such as /dev/ttyUSB0 or /dev/serial/by-id/...",
                 example);
  }
  SerialSettings settings;
  settings.baud = static_cast<int>(address.get_int("baud", 921600, 50, 20'000'000));
  const std::string flow = address.get_choice("flow", "none", {"none", "rtscts", "xonxoff"});
  settings.flow = flow == "rtscts"    ? FlowControl::rts_cts
                  : flow == "xonxoff" ? FlowControl::xon_xoff
                                      : FlowControl::none;
  return settings;
}

SerialTransport::SerialTransport(const std::string& port_path, SerialSettings settings)
    : Transport("serial:" + port_path + "?baud=" + std::to_string(settings.baud) +
                "&flow=" + flow_name(settings.flow)),
      port_path_(port_path),
      settings_(settings) {
  auto fail = [&](const std::string& why) -> TransportError {
    if (port_ != nullptr) {
      sp_close(port_);
      sp_free_port(port_);
      port_ = nullptr;
    }
    return TransportError("cannot open serial port " + port_path + ": " + why);
  };
  // by-id names are symlinks; libserialport looks ports up in sysfs by their /dev/ name.
  std::error_code ec;
  const fs::path canonical = fs::canonical(port_path, ec);
  if (ec) {
    throw fail(ec.message() + " (list the ports with `metaplast ports`)");
  }
  const std::string device = canonical.string();
  const bool known_to_sysfs = device.rfind("/dev/", 0) == 0 &&
                              fs::exists(fs::path("/sys/class/tty") / device.substr(5), ec);
  // A pty slave has no sysfs entry, so sp_get_port_by_name() rejects /dev/pts/N. Hand it a name
  // that opens the same device and whose sysfs lookup resolves a symlink: /proc/self/fd/N of a
  // descriptor we hold on the device ("/dev/../../../" climbs to / from both /dev and
  // /sys/class/tty). Only the metadata lookup differs; opening and configuring are libserialport's.
  int held_fd = -1;
  std::string sp_name = device;
  if (!known_to_sysfs) {
    held_fd = ::open(device.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (held_fd < 0) throw fail(errno_message("open", errno));
    sp_name = "/dev/../../../proc/self/fd/" + std::to_string(held_fd);
  }
  struct HeldFd {
    int& fd;
    ~HeldFd() { detail::close_fd(fd); }
  } held{held_fd};

  if (sp_get_port_by_name(sp_name.c_str(), &port_) != SP_OK) {
    port_ = nullptr;
    throw fail(sp_error_text());
  }
  if (sp_open(port_, SP_MODE_READ_WRITE) != SP_OK) {
    const int error = errno;
    const std::string why = sp_error_text();
    sp_free_port(port_);
    port_ = nullptr;
    if (error == ENOTTY && held_fd >= 0 && is_pty_slave(held_fd)) {
      // The ioctl() above did not take part: this code runs inside a module a program loaded
      // (the Python extension), where libserialport binds the C library's ioctl().
      throw fail(why +
                 " (a pseudo-terminal: libserialport reaches one only through the ioctl() "
                 "that metaplast's executables carry, not from a library another program "
                 "loads, such as the Python module; reach metaplast-simboard over tcp: there)");
    }
    throw fail(why + (error == EACCES ? " (add your user to the 'dialout' group)" : ""));
  }
  sp_port_config* config = nullptr;
  if (sp_new_config(&config) != SP_OK) throw fail(sp_error_text());
  const sp_flowcontrol flow = settings.flow == FlowControl::rts_cts    ? SP_FLOWCONTROL_RTSCTS
                              : settings.flow == FlowControl::xon_xoff ? SP_FLOWCONTROL_XONXOFF
                                                                       : SP_FLOWCONTROL_NONE;
  const bool configured = sp_set_config_baudrate(config, settings.baud) == SP_OK &&
                          sp_set_config_bits(config, 8) == SP_OK &&
                          sp_set_config_parity(config, SP_PARITY_NONE) == SP_OK &&
                          sp_set_config_stopbits(config, 1) == SP_OK &&
                          sp_set_config_flowcontrol(config, flow) == SP_OK &&
                          sp_set_config(port_, config) == SP_OK;
  sp_free_config(config);
  if (!configured) {
    throw fail("cannot set " + std::to_string(settings.baud) +
               " baud 8N1 flow=" + flow_name(settings.flow) + ": " + sp_error_text());
  }
  if (sp_get_port_handle(port_, &fd_) != SP_OK) throw fail(sp_error_text());
  try {
    wake_fd_ = detail::make_wake_fd();
  } catch (const TransportError& e) {
    throw fail(e.what());
  }
  // Bytes left in the OS buffer from before we opened belong to nobody's request.
  sp_flush(port_, SP_BUF_INPUT);
}

SerialTransport::~SerialTransport() { close(); }

IoResult SerialTransport::do_write(std::span<const std::uint8_t> bytes, Deadline deadline) {
  bool saw_hangup = false;
  while (true) {
    int n = sp_nonblocking_write(port_, bytes.data(), bytes.size());
    // libserialport 0.1.1 reports a full buffer (EAGAIN) as a failure: it only means "wait".
    if (n < 0 && (sp_last_error_code() == EAGAIN || sp_last_error_code() == EWOULDBLOCK)) n = 0;
    if (n > 0) return {IoStatus::ok, static_cast<std::size_t>(n), {}};
    if (n < 0) {
      const int err = sp_last_error_code();
      if (err == EIO || err == ENXIO || err == EPIPE || err == ENODEV || saw_hangup) {
        return {IoStatus::closed, 0,
                "serial " + port_path_ + ": link lost (" + sp_error_text() + ")"};
      }
      return {IoStatus::error, 0, "serial " + port_path_ + ": write failed: " + sp_error_text()};
    }
    if (saw_hangup) return {IoStatus::closed, 0, "serial " + port_path_ + ": hung up"};
    if (auto result = detail::wait_for_io(fd_, POLLOUT, wake_fd_, deadline, "serial " + port_path_,
                                          &saw_hangup)) {
      return *result;
    }
  }
}

IoResult SerialTransport::do_read(std::span<std::uint8_t> buffer, Deadline deadline) {
  bool saw_hangup = false;
  while (true) {
    int n = sp_nonblocking_read(port_, buffer.data(), buffer.size());
    if (n < 0 && (sp_last_error_code() == EAGAIN || sp_last_error_code() == EWOULDBLOCK)) n = 0;
    if (n > 0) return {IoStatus::ok, static_cast<std::size_t>(n), {}};
    if (n < 0) {
      const int err = sp_last_error_code();
      if (err == EIO || err == ENXIO || err == ENODEV || saw_hangup) {
        return {IoStatus::closed, 0,
                "serial " + port_path_ + ": link lost (" + sp_error_text() + ")"};
      }
      return {IoStatus::error, 0, "serial " + port_path_ + ": read failed: " + sp_error_text()};
    }
    // Nothing read after a hang-up: the device is gone (USB unplugged, pty master closed).
    if (saw_hangup) return {IoStatus::closed, 0, "serial " + port_path_ + ": hung up"};
    if (auto result = detail::wait_for_io(fd_, POLLIN, wake_fd_, deadline, "serial " + port_path_,
                                          &saw_hangup)) {
      return *result;
    }
  }
}

void SerialTransport::do_flush() { sp_flush(port_, SP_BUF_INPUT); }

void SerialTransport::do_interrupt() { detail::signal_wake_fd(wake_fd_); }

void SerialTransport::do_close() {
  if (port_ != nullptr) {
    sp_close(port_);
    sp_free_port(port_);
    port_ = nullptr;
  }
  fd_ = -1;
  detail::close_fd(wake_fd_);
}

std::string find_serial_by_id_path(const std::string& device_path) {
  std::error_code ec;
  const fs::path target = fs::canonical(device_path, ec);
  if (ec) return {};
  const fs::path by_id = "/dev/serial/by-id";
  if (!fs::is_directory(by_id, ec)) return {};
  std::vector<std::string> matches;
  for (const auto& entry : fs::directory_iterator(by_id, ec)) {
    std::error_code link_ec;
    if (fs::canonical(entry.path(), link_ec) == target && !link_ec) {
      matches.push_back(entry.path().string());
    }
  }
  std::sort(matches.begin(), matches.end());
  return matches.empty() ? std::string{} : matches.front();
}

std::vector<SerialPortInfo> list_serial_ports() {
  sp_port** ports = nullptr;
  if (sp_list_ports(&ports) != SP_OK) {
    throw TransportError("cannot list serial ports: " + sp_error_text());
  }
  std::vector<SerialPortInfo> result;
  for (sp_port** port = ports; *port != nullptr; ++port) {
    SerialPortInfo info;
    auto text = [](const char* s) { return s ? std::string(s) : std::string(); };
    info.path = text(sp_get_port_name(*port));
    info.description = text(sp_get_port_description(*port));
    switch (sp_get_port_transport(*port)) {
      case SP_TRANSPORT_USB: {
        info.kind = "usb";
        int vid = 0, pid = 0;
        if (sp_get_port_usb_vid_pid(*port, &vid, &pid) == SP_OK) {
          info.usb_vid = static_cast<std::uint16_t>(vid);
          info.usb_pid = static_cast<std::uint16_t>(pid);
        }
        info.usb_manufacturer = text(sp_get_port_usb_manufacturer(*port));
        info.usb_product = text(sp_get_port_usb_product(*port));
        info.usb_serial = text(sp_get_port_usb_serial(*port));
        break;
      }
      case SP_TRANSPORT_NATIVE:
        info.kind = "native";
        break;
      case SP_TRANSPORT_BLUETOOTH:
        info.kind = "bluetooth";
        break;
      default:
        info.kind = "unknown";
    }
    info.by_id_path = find_serial_by_id_path(info.path);
    result.push_back(std::move(info));
  }
  sp_free_port_list(ports);
  std::sort(result.begin(), result.end(),
            [](const SerialPortInfo& a, const SerialPortInfo& b) { return a.path < b.path; });
  return result;
}

}  // namespace metaplast::drivers
