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
#include "instruments/station_limits.hpp"

namespace metaplast::board {

// Registers the sim: scheme (sim::register_transport_scheme) for the product.
// Idempotent and thread-safe.
void register_sim_scheme();

// True for a sim: address (the in-process simulated board). The only board known to be
// simulated: a tcp: board may be metaplast-simboard, but nothing proves it.
bool is_sim_address(std::string_view address);

// Permission to pulse cells of a board that is not simulated (docs/campaigns.md, "Permission to
// pulse"): --yes on the command line, or "allow_pulses": true in the station file.
struct PulsePermission {
  bool yes = false;             // --yes given
  bool station_allows = false;  // the station file's "allow_pulses"
  std::string station_file;     // where the station came from ("": none), for the message
};

// From --yes and a loaded station.
PulsePermission pulse_permission(bool yes, const instruments::Station& station);

// The one safety rule: `what` (e.g. "board form") would pulse cells of the board at the RESOLVED
// `address`; unless it is an in-process sim: board or permission is given, throws
// std::invalid_argument saying what, which board and how to allow it. Nothing is opened. An
// address no board can have (drivers::check_address refuses it) passes: opening it reports that.
void require_pulse_permission(const std::string& what, const std::string& address,
                              const PulsePermission& permission);
// Whether require_pulse_permission would let it through.
bool pulses_permitted(const std::string& address, const PulsePermission& permission);

struct SessionOptions {
  std::string device;                            // transport address
  std::optional<std::filesystem::path> station;  // station limits file (JSON)
  std::optional<std::filesystem::path> record;   // record every frame to this file
  instruments::RetryPolicy policy;
  bool yes = false;  // --yes: permission to pulse a non-simulated board
  // Board settings given on the command line (add_board_settings_options in app/cli/commands.hpp).
  instruments::SettingValues settings;
};

// The board a session opens: `device`, else the station's array-board (throws as
// instruments::resolve_board_address).
std::string board_address(const SessionOptions& options);

// require_pulse_permission for the board the session would open (--yes from options.yes, the
// station key from options.station). Call before open_board.
void require_pulse_permission(const std::string& what, const SessionOptions& options);
// Whether that would let it through (board selftest runs only its read-only checks otherwise).
bool pulses_permitted(const SessionOptions& options);

// Station limits from the file, or the built-in conservative defaults. Throws with the file
// name on a bad file.
instruments::StationLimits station_limits_for(const SessionOptions& options);

// Registers sim:, makes the board (with the recorder if asked) and opens it (identify).
// Throws drivers::AddressError (bad address: names the accepted forms), LinkError, ...
std::unique_ptr<instruments::ArrayBoard> open_board(const SessionOptions& options);

// The settings a session works with (docs/bench.md, "Pulse and read conditions"): the built-in
// defaults, then the station file's "board_settings", then `campaign_values` (a campaign's and a
// step's), then the command line's (options.settings). Checked against the station limits here,
// before any board is opened: throws instruments::LimitError naming the value and its limit.
instruments::BoardSettings session_settings(const SessionOptions& options,
                                            const instruments::SettingValues& campaign_values = {});

// Opens, configures with `settings` (checked against the station's and then the board's limits
// before CONFIGURE is sent) and activates.
std::unique_ptr<instruments::ArrayBoard> open_active_board(
    const SessionOptions& options, const instruments::BoardSettings& settings);
// The same with session_settings(options).
std::unique_ptr<instruments::ArrayBoard> open_active_board(const SessionOptions& options);

}  // namespace metaplast::board
