// The composition root of the board commands: registers the `sim:` transport scheme (the
// in-process simulated board) into drivers/, and opens an ArrayBoard from command-line style
// options (address, station file, recording file).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "instruments/array_board.hpp"

namespace metaplast::board {

// Registers the sim: scheme (sim::register_transport_scheme) for the product.
// Idempotent and thread-safe.
void register_sim_scheme();

// True for a sim: address (the in-process simulated board).
bool is_sim_address(std::string_view address);

struct SessionOptions {
  std::string device;                            // transport address
  std::optional<std::filesystem::path> station;  // station limits file (JSON)
  std::optional<std::filesystem::path> record;   // record every frame to this file
  instruments::RetryPolicy policy;
};

// Station limits from the file, or the built-in conservative defaults. Throws with the file
// name on a bad file.
instruments::StationLimits station_limits_for(const SessionOptions& options);

// Registers sim:, makes the board (with the recorder if asked) and opens it (identify).
// Throws drivers::AddressError (bad address: names the accepted forms), LinkError, ...
std::unique_ptr<instruments::ArrayBoard> open_board(const SessionOptions& options);

// Opens, configures with the default settings (clipped to nothing: defaults are within the
// default station limits and the simulated board's limits) and activates.
std::unique_ptr<instruments::ArrayBoard> open_active_board(
    const SessionOptions& options, const instruments::BoardSettings& settings = {});

}  // namespace metaplast::board
