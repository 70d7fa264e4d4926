// How long the array board's operations take (device time) and how long their frames take on the
// link: the simulated board advances its clock by it (and, in its realistic-link mode, holds
// every reply that long), and the campaign planner and the bench-time estimate
// (app/hil/board_time_estimate.hpp) project a run's duration with it. docs/protocol.md gives the
// operations, docs/campaigns.md ("Board time") the model's assumptions; the figures are typical of
// the test board, not a measurement.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace metaplast::devices {

// How long things take on the board (device time).
struct TimingModel {
  std::int64_t command_overhead_ns = 20'000;  // parse, dispatch, reply per array request
  std::int64_t cell_select_ns = 200;          // address decoders per cell visited
  std::int64_t pulse_settle_ns = 1'000;       // drive the lines before and release after a pulse
  std::int64_t adc_conversion_ns = 8'000;     // TIA settling + one conversion per read
  std::uint32_t baud = 921'600;               // link speed; 10 bits per byte (8N1)

  std::int64_t link_ns(std::size_t bytes) const {
    return static_cast<std::int64_t>(bytes) * 10 * 1'000'000'000LL / baud;
  }
  // One programming pulse of `width_ns` on one cell (select, settle, the pulse).
  std::int64_t pulse_ns(std::int64_t width_ns) const {
    return cell_select_ns + pulse_settle_ns + width_ns;
  }
  // One read of one cell (select, TIA settling and conversion).
  std::int64_t read_ns() const { return cell_select_ns + adc_conversion_ns; }
};

// The host-board link as the estimate sees it: every request costs `request_latency_ns` (the
// round trip beyond the bytes: USB-serial latency, a network stack) plus its frames' bytes, both
// ways, at `bytes_per_second`.
struct LinkModel {
  std::string_view name;
  double bytes_per_second = 92'160;
  double request_latency_ns = 0;

  double time_ns(double requests, double bytes) const {
    return requests * request_latency_ns + bytes * 1e9 / bytes_per_second;
  }
  // A UART at `baud`, 8N1 (10 bits per byte), no latency beyond the bytes: the link of the
  // simulated board's timing model (TimingModel::link_ns).
  static LinkModel uart(std::uint32_t baud = 921'600) {
    return {"UART", static_cast<double>(baud) / 10.0, 0.0};
  }
  // A board on 100 Mbit/s Ethernet: 12.5 MB/s, and 100 us per request round trip (the board's
  // TCP/IP stack and one switch; TCP_NODELAY is set by the host's transport).
  static LinkModel tcp() { return {"TCP", 12.5e6, 100'000.0}; }
};

}  // namespace metaplast::devices
