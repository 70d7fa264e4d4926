#include "app/board/board_session.hpp"

#include "sim/server.hpp"

namespace metaplast::board {

void register_sim_scheme() { sim::register_transport_scheme(); }

bool is_sim_address(std::string_view address) { return address.rfind("sim:", 0) == 0; }

instruments::StationLimits station_limits_for(const SessionOptions& options) {
  if (options.station) return instruments::load_station_limits(*options.station);
  return instruments::StationLimits::defaults();
}

std::unique_ptr<instruments::ArrayBoard> open_board(const SessionOptions& options) {
  register_sim_scheme();
  const std::string device = instruments::resolve_board_address(options.device, options.station);
  auto board = std::make_unique<instruments::ArrayBoard>(device, station_limits_for(options),
                                                         options.policy);
  if (options.record) {
    board->set_recorder(std::make_shared<instruments::FrameRecorder>(*options.record, device));
  }
  board->open();
  return board;
}

std::unique_ptr<instruments::ArrayBoard> open_active_board(
    const SessionOptions& options, const instruments::BoardSettings& settings) {
  auto board = open_board(options);
  board->configure(settings);
  board->activate();
  return board;
}

}  // namespace metaplast::board
