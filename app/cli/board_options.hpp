// Command-line options shared by every command that touches a board.
#pragma once

#include <CLI/CLI.hpp>

#include "instruments/board_settings.hpp"

namespace metaplast::cli {

// One option per board setting (instruments/board_settings.hpp: --read-voltage, --set-width, ...)
// in a "Board settings" group; each value given is checked (range, whole numbers) and stored
// in `values` by key. Limits are checked later, when the settings are resolved
// (board::session_settings).
void add_board_settings_options(CLI::App* cmd, instruments::SettingValues& values);

}  // namespace metaplast::cli
