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

}  // namespace

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
}

void check_station_limits(const PulseSpec& p, const StationLimits& l) {
  check_max(p.wl_voltage_v, l.max_wl_voltage_v, "pulse wl_voltage_v", "max_wl_voltage_v", l);
  check_max(p.bl_voltage_v, l.max_bl_voltage_v, "pulse bl_voltage_v", "max_bl_voltage_v", l);
  check_max(p.pulse_width_ns, l.max_pulse_width_ns, "pulse_width_ns", "max_pulse_width_ns", l);
}

}  // namespace metaplast::instruments
