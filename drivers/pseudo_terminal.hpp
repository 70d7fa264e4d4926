// A pseudo-terminal for the simulated board: the board's firmware reads and writes the master
// side (this object is that Transport), and the host opens slave_path() (/dev/pts/N) through
// SerialTransport/libserialport exactly as it would a USB serial board.
//
// The slave side is put in raw mode (no echo, no line editing, no CR/LF translation, 8 bits).
// PseudoTerminal keeps its own descriptor on the slave open, so that a host closing and reopening
// the port (a reconnect) does not make the master see a hang-up; consequence: the master does
// not learn that a host went away (neither would a real board's UART). Destroying or closing the
// PseudoTerminal removes /dev/pts/N, and a host reading it then gets status closed.
#pragma once

#include <string>

#include "drivers/transport.hpp"

namespace metaplast::drivers {

class PseudoTerminal final : public Transport {
 public:
  // posix_openpt + grantpt + unlockpt + raw mode. Throws TransportError on failure.
  PseudoTerminal();
  ~PseudoTerminal() override;

  // The slave device path, e.g. "/dev/pts/7".
  const std::string& slave_path() const { return slave_path_; }
  // What the host passes to make_transport: "serial:/dev/pts/7?baud=<baud>". The baud rate has
  // no effect on a pty's speed; it is there so the host configures the port as for a real board.
  std::string client_address(int baud = 921600) const;

 protected:
  IoResult do_write(std::span<const std::uint8_t> bytes, Deadline deadline) override;
  IoResult do_read(std::span<std::uint8_t> buffer, Deadline deadline) override;
  void do_flush() override;
  void do_close() override;
  void do_interrupt() override;

 private:
  struct Opened;  // the descriptors and path, opened before the Transport base is built
  explicit PseudoTerminal(Opened opened);
  static Opened open_pty();

  int master_fd_ = -1;
  int slave_keepalive_fd_ = -1;
  int wake_fd_ = -1;
  std::string slave_path_;
};

}  // namespace metaplast::drivers
