// Host-side limit checks: run before anything is encoded or sent.
#include <sstream>

#include "instruments/array_board.hpp"

namespace metaplast::instruments {

namespace {

void check_max(double value, double limit, const char* what, const char* limit_key,
               const StationLimits& limits) {
  if (!(value >= 0)) {
    std::ostringstream msg;
    msg << what << " = " << value << " is negative or not a number";
    throw LimitError(msg.str());
  }
  if (value > limit) {
    std::ostringstream msg;
    msg << what << " = " << value << " exceeds the station limit " << limit_key << " = " << limit
        << " (" << limits.station_name
        << "); lower the setting or raise the limit in the station file (--station)";
    throw LimitError(msg.str());
  }
}

// "level_gate_voltages_v[2]" for the message of one entry.
std::string entry(const char* key, std::size_t i) {
  return std::string(key) + "[" + std::to_string(i) + "]";
}

}  // namespace

void check_level_table(const std::vector<double>& gates_v, const std::vector<double>& targets_us,
                       const StationLimits& l) {
  if (gates_v.size() != targets_us.size()) {
    throw LimitError("level_gate_voltages_v lists " + std::to_string(gates_v.size()) +
                     " levels but level_targets_us " + std::to_string(targets_us.size()) +
                     ": give one target per gate (both empty: the board's own table)");
  }
  for (std::size_t i = 0; i < gates_v.size(); ++i) {
    const std::string gate = entry("level_gate_voltages_v", i);
    const std::string target = entry("level_targets_us", i);
    check_max(gates_v[i], l.max_wl_voltage_v, gate.c_str(), "max_wl_voltage_v", l);
    if (!(targets_us[i] > 0)) {
      std::ostringstream msg;
      msg << target << " = " << targets_us[i] << " must be above 0 uS";
      throw LimitError(msg.str());
    }
    if (i > 0 && !(gates_v[i] > gates_v[i - 1] && targets_us[i] > targets_us[i - 1])) {
      std::ostringstream msg;
      msg << "the level table must ascend in gate voltage and target: level " << i + 1 << " ("
          << gates_v[i] << " V, " << targets_us[i] << " uS) is not above level " << i << " ("
          << gates_v[i - 1] << " V, " << targets_us[i - 1] << " uS)";
      throw LimitError(msg.str());
    }
  }
}

void check_station_limits(const BoardSettings& s, const StationLimits& l) {
  check_max(s.read_voltage_v, l.max_read_voltage_v, "read_voltage_v", "max_read_voltage_v", l);
  check_max(s.set_bl_voltage_v, l.max_bl_voltage_v, "set_bl_voltage_v", "max_bl_voltage_v", l);
  check_max(s.form_bl_voltage_v, l.max_bl_voltage_v, "form_bl_voltage_v", "max_bl_voltage_v", l);
  check_max(s.reset_sl_voltage_v, l.max_sl_voltage_v, "reset_sl_voltage_v", "max_sl_voltage_v", l);
  check_max(s.reset_wl_voltage_v, l.max_wl_voltage_v, "reset_wl_voltage_v", "max_wl_voltage_v", l);
  check_max(s.form_wl_voltage_v, l.max_wl_voltage_v, "form_wl_voltage_v", "max_wl_voltage_v", l);
  check_max(s.set_pulse_width_ns, l.max_pulse_width_ns, "set_pulse_width_ns", "max_pulse_width_ns",
            l);
  check_max(s.reset_pulse_width_ns, l.max_pulse_width_ns, "reset_pulse_width_ns",
            "max_pulse_width_ns", l);
  check_max(s.form_pulse_width_ns, l.max_pulse_width_ns, "form_pulse_width_ns",
            "max_pulse_width_ns", l);
  check_level_table(s.level_gate_voltages_v, s.level_targets_us, l);
}

void check_station_limits(const PulseSpec& p, const StationLimits& l) {
  check_max(p.wl_voltage_v, l.max_wl_voltage_v, "pulse wl_voltage_v", "max_wl_voltage_v", l);
  check_max(p.bl_voltage_v, l.max_bl_voltage_v, "pulse bl_voltage_v", "max_bl_voltage_v", l);
  check_max(p.pulse_width_ns, l.max_pulse_width_ns, "pulse_width_ns", "max_pulse_width_ns", l);
}

}  // namespace metaplast::instruments
