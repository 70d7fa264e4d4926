// metaplast: the lab-control command line. See README.md for the commands.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "app/cli/commands.hpp"

int main(int argc, char** argv) {
  CLI::App root{"metaplast: on-chip continual learning with metaplastic memristor weights"};
  root.require_subcommand(1);
  root.set_version_flag("--version", METAPLAST_VERSION);
  metaplast::cli::add_train_command(root);
  metaplast::cli::add_board_commands(root);
  metaplast::cli::add_ports_command(root);
  metaplast::cli::add_characterize_command(root);
  metaplast::cli::add_campaign_command(root);
  metaplast::cli::add_report_command(root);
  metaplast::cli::add_measure_command(root);
  metaplast::cli::add_calibrate_command(root);
  metaplast::cli::add_view_command(root);
  try {
    root.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return root.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "metaplast: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
