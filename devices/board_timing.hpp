// How long the array board's operations take (device time): the simulated board advances its
// clock by it, and the campaign planner estimates a step's duration with it (docs/protocol.md
// gives the operations; the figures are typical of the test board, not a measurement).
#pragma once

#include <cstddef>
#include <cstdint>

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
};

}  // namespace metaplast::devices
