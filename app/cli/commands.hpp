// The subcommands of `metaplast`. Each add_* registers one command (and its options) on the
// root CLI11 app; the command's callback does the work and throws metaplast::UserError (or any
// std::exception) on failure, which main() turns into a message and a non-zero exit status.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "app/hil/characterize.hpp"
#include "app/learning/train_config.hpp"
#include "instruments/board_settings.hpp"

namespace metaplast::live {
class LiveFeed;
}

namespace metaplast::cli {

void add_train_command(CLI::App& root);
void add_board_commands(CLI::App& root);
void add_ports_command(CLI::App& root);
void add_characterize_command(CLI::App& root);
void add_campaign_command(CLI::App& root);
void add_report_command(CLI::App& root);
void add_measure_command(CLI::App& root);
void add_calibrate_command(CLI::App& root);
void add_view_command(CLI::App& root);

// Parses `arguments` (the options after a command's name) into `command` as CLI11 parses a
// command line. Throws CLI::ParseError.
inline void parse_arguments(CLI::App& command, const std::vector<std::string>& arguments) {
  std::vector<std::string> reversed(arguments.rbegin(), arguments.rend());  // CLI11's order
  command.parse(reversed);
}

// What a `metaplast train` command line runs, resolved with every check the command makes before
// it trains (option values, the station, the preset, permission to pulse, --record, board
// settings without a board layer). The command line and the Python module (docs/python.md) both
// start training from it.
struct TrainJob {
  learning::TrainConfig config;
  std::filesystem::path out;  // the run directory (--out, --resume's, or runs/<timestamp>)
  bool resume = false;
  int repeat = 1;  // > 1: repetitions into out/seed-S (hil::run_repetitions)
};
// `arguments`: the options after "train", e.g. {"--epochs", "2", "--out", "runs/a"}. Throws
// CLI::ParseError for an unknown option or a malformed value (its message names it),
// std::invalid_argument for the command's own checks.
TrainJob parse_train_job(const std::vector<std::string>& arguments);

// What a `metaplast characterize` command line asks for: the options as parsed. options.progress
// and options.log (and on_start, the line naming board, chip and sizes) are the caller's: the
// command line's progress line, or the Python module's queue.
struct CharacterizeJob {
  std::string device, out, station, chip, record, chips_dir, base_calibration;
  bool no_registry = false;
  bool yes = false;  // permission to pulse a board that is not simulated
  double outlier_z = 6.0;
  instruments::SettingValues settings;  // board settings from the command line
  hil::CharacterizeOptions options;
  std::function<void(const std::string&)> on_start;
  // The live view to publish to (--live): progress, every level's CDF, the link; null: none.
  live::LiveFeed* live = nullptr;
};
// Throws as parse_train_job.
CharacterizeJob parse_characterize_job(const std::vector<std::string>& arguments);

// What a characterisation measured and wrote (out_dir: samples.csv, cdf.csv, calibration.json,
// cdf.png unless plot_error says why not; the chip record unless --no-registry).
struct CharacterizeOutcome {
  hil::Characterization data;
  hil::CharacterizationResult result;
  instruments::BoardInfo info;
  std::string chip_id;
  std::filesystem::path out_dir;
  std::string plot_error, registry_note;
};
// Checks (permission, settings against the station, the output folder), opens the board,
// measures, fits and writes. The board is left safe on every exit (RAII). Throws what the steps
// throw; an exception from options.progress ends the measurement there.
CharacterizeOutcome run_characterize_job(const CharacterizeJob& job);

}  // namespace metaplast::cli
