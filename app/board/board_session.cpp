#include "app/board/board_session.hpp"

#include "drivers/transport_factory.hpp"
#include "sim/server.hpp"

namespace metaplast::board {

void register_sim_scheme() { sim::register_transport_scheme(); }

bool is_sim_address(std::string_view address) { return address.rfind("sim:", 0) == 0; }

PulsePermission pulse_permission(bool yes, const instruments::Station& station) {
  return {yes, station.allow_pulses, station.source};
}

bool pulses_permitted(const std::string& address, const PulsePermission& permission) {
  if (is_sim_address(address) || permission.yes || permission.station_allows) return true;
  try {
    register_sim_scheme();
    drivers::check_address(address);
  } catch (const drivers::AddressError&) {
    return true;  // no board can be opened there: opening it reports the address error
  }
  return false;
}

void require_pulse_permission(const std::string& what, const std::string& address,
                              const PulsePermission& permission) {
  if (pulses_permitted(address, permission)) return;
  const std::string station = permission.station_file.empty()
                                  ? "the station file (--station FILE)"
                                  : "the station file " + permission.station_file;
  throw std::invalid_argument(
      what + ": refused: it pulses cells of the board at " + address +
      ", which is not a simulated board (only an in-process sim: address is); to pulse this "
      "board add --yes, or set \"allow_pulses\": true in " +
      station + " (docs/campaigns.md, \"Permission to pulse\")");
}

std::string board_address(const SessionOptions& options) {
  return instruments::resolve_board_address(options.device, options.station);
}

namespace {

PulsePermission session_permission(const SessionOptions& options) {
  const instruments::Station station =
      options.station ? instruments::load_station(*options.station) : instruments::Station{};
  return pulse_permission(options.yes, station);
}

}  // namespace

void require_pulse_permission(const std::string& what, const SessionOptions& options) {
  const std::string address = board_address(options);
  if (is_sim_address(address) || options.yes) return;
  require_pulse_permission(what, address, session_permission(options));
}

bool pulses_permitted(const SessionOptions& options) {
  const std::string address = board_address(options);
  return is_sim_address(address) || options.yes ||
         pulses_permitted(address, session_permission(options));
}

instruments::StationLimits station_limits_for(const SessionOptions& options) {
  if (options.station) return instruments::load_station_limits(*options.station);
  return instruments::StationLimits::defaults();
}

std::unique_ptr<instruments::ArrayBoard> open_board(const SessionOptions& options) {
  register_sim_scheme();
  const std::string device = board_address(options);
  auto board = std::make_unique<instruments::ArrayBoard>(device, station_limits_for(options),
                                                         options.policy);
  if (options.record) {
    board->set_recorder(std::make_shared<instruments::FrameRecorder>(*options.record, device));
  }
  board->open();
  return board;
}

instruments::BoardSettings session_settings(const SessionOptions& options,
                                            const instruments::SettingValues& campaign_values) {
  const instruments::Station station =
      options.station ? instruments::load_station(*options.station) : instruments::Station{};
  instruments::BoardSettings settings = instruments::with_values({}, station.board_settings);
  settings = instruments::with_values(settings, campaign_values);
  settings = instruments::with_values(settings, options.settings);
  instruments::check_station_limits(settings, station.limits);
  return settings;
}

std::unique_ptr<instruments::ArrayBoard> open_active_board(const SessionOptions& options) {
  return open_active_board(options, session_settings(options));
}

std::unique_ptr<instruments::ArrayBoard> open_active_board(
    const SessionOptions& options, const instruments::BoardSettings& settings) {
  auto board = open_board(options);
  board->configure(settings);
  board->activate();
  return board;
}

}  // namespace metaplast::board
