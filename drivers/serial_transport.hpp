// Serial ports through libserialport: 8 data bits, no parity, 1 stop bit, chosen baud and flow
// control. Address: serial:/dev/ttyUSB0?baud=921600&flow=none|rtscts|xonxoff (defaults: 921600,
// none); /dev/serial/by-id/... paths (stable across USB re-enumeration) and bare /dev/... paths
// are accepted too. Works on pseudo-terminal slaves (/dev/pts/N), which is how the simulated
// board is reached "exactly as a USB board" (see serial_transport.cpp for the pty quirk).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "drivers/address.hpp"
#include "drivers/transport.hpp"

struct sp_port;  // libserialport, kept out of users' includes

namespace metaplast::drivers {

enum class FlowControl { none, rts_cts, xon_xoff };

struct SerialSettings {
  int baud = 921600;  // bits per second
  FlowControl flow = FlowControl::none;
};

class SerialTransport final : public Transport {
 public:
  // Opens and configures the port (8N1, `settings`). Throws TransportError naming the port and
  // libserialport's reason (missing device, permission denied: add the user to group dialout, ...).
  explicit SerialTransport(const std::string& port_path, SerialSettings settings = {});
  // From a parsed serial: address (keys baud, flow). Throws AddressError / TransportError.
  static std::unique_ptr<SerialTransport> open(const Address& address);
  // The settings a serial: address asks for, checked without opening anything. Throws
  // AddressError.
  static SerialSettings settings_for(const Address& address);
  ~SerialTransport() override;

  const std::string& port_path() const { return port_path_; }
  const SerialSettings& settings() const { return settings_; }

 protected:
  IoResult do_write(std::span<const std::uint8_t> bytes, Deadline deadline) override;
  IoResult do_read(std::span<std::uint8_t> buffer, Deadline deadline) override;
  void do_flush() override;
  void do_close() override;
  void do_interrupt() override;

 private:
  std::string port_path_;
  SerialSettings settings_;
  sp_port* port_ = nullptr;
  int fd_ = -1;       // libserialport's descriptor, for poll() with a wake-up
  int wake_fd_ = -1;  // eventfd signalled by close()
};

struct SerialPortInfo {
  std::string path;         // e.g. /dev/ttyUSB0
  std::string by_id_path;   // /dev/serial/by-id/... link resolving to path, or empty
  std::string description;  // libserialport's description (often the USB product string)
  std::string kind;         // "usb", "native", "bluetooth" or "unknown"
  std::optional<std::uint16_t> usb_vid, usb_pid;
  std::string usb_manufacturer, usb_product, usb_serial;  // empty when unknown
};

// The serial ports libserialport sees, sorted by path. Empty when there are none. Throws
// TransportError only if enumeration itself fails.
std::vector<SerialPortInfo> list_serial_ports();

// The /dev/serial/by-id/ link that resolves to `device_path`, or "" when none does.
std::string find_serial_by_id_path(const std::string& device_path);

}  // namespace metaplast::drivers
