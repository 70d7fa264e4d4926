#include "instruments/board_identity.hpp"

#include <cmath>
#include <sstream>

#include "instruments/board_link.hpp"

namespace metaplast::instruments {

namespace p = metaplast::protocols;

namespace {

class IdentityChecker {
 public:
  explicit IdentityChecker(const std::string& address) : address_(address) {}

  // value within lo..hi (inclusive), else BoardError naming the field.
  void range(const std::string& field, double value, double lo, double hi) const {
    if (std::isfinite(value) && value >= lo && value <= hi) return;
    std::ostringstream msg;
    msg << "board at " << address_ << " advertises " << field << " = " << value
        << " in IDENTIFY, outside the allowed range " << lo << " .. " << hi
        << " (docs/protocol.md 4.1); the board's firmware does not follow the protocol";
    throw BoardError(msg.str());
  }

 private:
  const std::string& address_;
};

}  // namespace

void check_identity(const p::IdentifyResponse& id, const std::string& address) {
  const IdentityChecker c(address);
  c.range("protocol_version", id.protocol_version, p::kProtocolVersion, p::kProtocolVersion);
  c.range("rows", id.rows, 1, 256);
  c.range("cols", id.cols, 1, 256);
  c.range("rows * cols", double(id.rows) * id.cols, 1, 65536);  // a cell index is a u16
  c.range("adc_bits", id.adc_bits, 8, 16);                      // codes are u16
  c.range("dac_bits", id.dac_bits, 1, 32);
  const double max_code = std::ldexp(1.0, id.adc_bits) - 1;
  for (std::size_t i = 0; i < id.tia_ranges.size(); ++i) {
    const auto& t = id.tia_ranges[i];
    const std::string where = "tia_ranges[" + std::to_string(i) + "].";
    c.range(where + "full_scale_na", t.full_scale_na, 1, 4'294'967'295.0);
    c.range(where + "nanoamps_per_code", t.nanoamps_per_code, 1e-12, 1e9);
    c.range(where + "zero_code", t.zero_code, 0, max_code);
  }
  for (std::size_t i = 0; i < id.levels.size(); ++i) {
    const auto& l = id.levels[i];
    const std::string where = "levels[" + std::to_string(i) + "].";
    if (i == 0) {
      c.range(where + "icc_na (the LCS)", l.icc_na, 0, 0);
      c.range(where + "target_conductance_us", l.target_conductance_us, 0, 1e6);
    } else {
      c.range(where + "icc_na", l.icc_na, 1, 4'294'967'295.0);
      c.range(where + "target_conductance_us", l.target_conductance_us, 1e-6, 1e6);
    }
  }
  const auto& m = id.limits;
  c.range("read_voltage_min_mv", m.read_voltage_min_mv, 1, 5000);
  c.range("read_voltage_max_mv", m.read_voltage_max_mv, m.read_voltage_min_mv, 5000);
  c.range("bit_line_max_mv", m.bit_line_max_mv, 1, 65535);
  c.range("source_line_max_mv", m.source_line_max_mv, 1, 65535);
  c.range("word_line_max_mv", m.word_line_max_mv, 1, 65535);
  c.range("pulse_width_min_ns", m.pulse_width_min_ns, 1, 4'294'967'295.0);
  c.range("pulse_width_max_ns", m.pulse_width_max_ns, m.pulse_width_min_ns, 4'294'967'295.0);
  c.range("max_attempts", m.max_attempts, 1, p::kMaxAttemptsLimit);
  if (id.capabilities & p::capability::kWatchdog) {
    c.range("watchdog_min_ms", m.watchdog_min_ms, 1, 60'000);
    c.range("watchdog_max_ms", m.watchdog_max_ms, m.watchdog_min_ms, 4'294'967'295.0);
  }
  c.range("boot_id", id.boot_id, 1, 4'294'967'295.0);
  c.range("max_payload_bytes", id.max_payload_bytes, p::kMinAdvertisedPayloadBytes,
          p::kMaxPayloadBytes);
}

}  // namespace metaplast::instruments
