// `metaplast ports`: the serial ports libserialport sees, with the stable /dev/serial/by-id/
// name to use in --device (it survives USB re-enumeration, /dev/ttyUSB0 does not).
#include <cstdio>
#include <string>
#include <vector>

#include "app/cli/commands.hpp"
#include "drivers/serial_transport.hpp"

namespace metaplast::cli {

namespace {

std::string hex4(std::uint16_t value) {
  char text[8];
  std::snprintf(text, sizeof text, "%04x", value);
  return text;
}

void print_ports() {
  const auto ports = drivers::list_serial_ports();
  if (ports.empty()) {
    std::printf(
        "No serial ports found.\n"
        "A USB board shows up as /dev/ttyUSB* or /dev/ttyACM*: check the cable, and that your user "
        "is in the 'dialout' group.\n"
        "Without hardware, use the simulated board: --device sim:?seed=1\n");
    return;
  }
  const std::vector<std::string> header = {"PORT",       "KIND",        "USB VID:PID",
                                           "USB SERIAL", "DESCRIPTION", "ADDRESS FOR --device"};
  std::vector<std::vector<std::string>> rows;
  for (const auto& port : ports) {
    const std::string vid_pid =
        port.usb_vid && port.usb_pid ? hex4(*port.usb_vid) + ":" + hex4(*port.usb_pid) : "-";
    const std::string& stable = port.by_id_path.empty() ? port.path : port.by_id_path;
    rows.push_back({port.path, port.kind, vid_pid, port.usb_serial.empty() ? "-" : port.usb_serial,
                    port.description.empty() ? "-" : port.description,
                    "serial:" + stable + "?baud=921600"});
  }
  std::vector<std::size_t> widths(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) {
    widths[c] = header[c].size();
    for (const auto& row : rows) widths[c] = std::max(widths[c], row[c].size());
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      const bool last = c + 1 == row.size();
      std::printf("%-*s%s", last ? 0 : static_cast<int>(widths[c]), row[c].c_str(),
                  last ? "\n" : "  ");
    }
  };
  print_row(header);
  for (const auto& row : rows) print_row(row);
  bool any_without_by_id = false;
  for (const auto& port : ports) any_without_by_id |= port.kind == "usb" && port.by_id_path.empty();
  if (any_without_by_id) {
    std::printf(
        "(a USB port without a /dev/serial/by-id/ name: its /dev name may change on replug)\n");
  }
}

}  // namespace

void add_ports_command(CLI::App& root) {
  auto* ports = root.add_subcommand(
      "ports", "List serial ports, with the stable /dev/serial/by-id/ names to use in --device");
  ports->callback(print_ports);
}

}  // namespace metaplast::cli
