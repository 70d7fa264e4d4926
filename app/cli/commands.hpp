// The subcommands of `metaplast`. Each add_* registers one command (and its options) on the
// root CLI11 app; the command's callback does the work and throws metaplast::UserError (or any
// std::exception) on failure, which main() turns into a message and a non-zero exit status.
#pragma once

#include <CLI/CLI.hpp>

namespace metaplast::cli {

void add_train_command(CLI::App& root);
void add_board_commands(CLI::App& root);
void add_ports_command(CLI::App& root);
void add_characterize_command(CLI::App& root);
void add_campaign_command(CLI::App& root);
void add_report_command(CLI::App& root);
void add_measure_command(CLI::App& root);
void add_calibrate_command(CLI::App& root);

}  // namespace metaplast::cli
