// `metaplast characterize`: the characterisation campaign (app/hil/characterize.hpp) from the
// command line: per-level samples, CDF (CSV and plot), calibration file, chip record.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "app/board/board_session.hpp"
#include "app/cli/board_options.hpp"
#include "app/cli/commands.hpp"
#include "app/cli/live_options.hpp"
#include "app/hil/characterization_record.hpp"
#include "app/hil/characterization_steps.hpp"
#include "app/hil/characterize.hpp"
#include "app/hil/chip_registry.hpp"
#include "app/hil/live_training.hpp"
#include "app/live/live_updates.hpp"
#include "app/util/progress.hpp"
#include "common/atomic_file.hpp"
#include "instruments/station_limits.hpp"

namespace metaplast::cli {

namespace {

namespace in = metaplast::instruments;

// The station file: host limits, plus an optional "chip" key naming the die mounted on it.
// (instruments/ refuses unknown keys, so "chip" is taken out before the limits are parsed.)
struct Station {
  in::StationLimits limits = in::StationLimits::defaults();
  std::string chip;
  std::string chips_dir;
};

Station load_station(const std::string& path) {
  Station station;
  if (path.empty()) return station;
  const in::Station file = in::load_station(path);
  station.chip = file.chip;
  station.chips_dir = file.chips_dir;
  station.limits = file.limits;
  return station;
}

// Makes DIR (and parents) and proves it writable before any pulse is spent.
void prepare_output_directory(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    throw std::runtime_error("cannot create the output directory " + dir.string() + ": " +
                             (ec ? ec.message() : std::string("not a directory")) +
                             " (choose another --out)");
  }
  const auto probe = dir / ".metaplast-write-test";
  try {
    common::write_file_atomically(probe, "ok");
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot write into the output directory " + dir.string() + ": " +
                             e.what() + " (permissions? disk full? choose another --out)");
  }
  std::filesystem::remove(probe, ec);
}

// "  level 3  step 120/180 (67%)  ETA 12 s" on a terminal.
std::function<void(const hil::CampaignProgress&)> terminal_progress(
    const std::shared_ptr<util::ProgressLine>& line) {
  if (!line->enabled()) return {};
  return [line](const hil::CampaignProgress& p) {
    const double fraction = p.steps_total ? static_cast<double>(p.steps_done) /
                                                static_cast<double>(p.steps_total)
                                          : 1.0;
    char text[128];
    std::snprintf(text, sizeof text, "  level %d  step %zu/%zu (%3.0f%%)  ETA %s", p.level,
                  p.steps_done, p.steps_total, 100.0 * fraction,
                  util::format_duration(util::seconds_left(line->elapsed_seconds(), fraction))
                      .c_str());
    line->show(text);
  };
}

// The live view of a characterisation (docs/live.md): progress, the CDFs of the levels measured
// so far after each level, and the link; chained before the caller's own hooks.
void publish_live(live::LiveFeed& feed, in::ArrayBoard& board, const in::BoardInfo& info,
                  const std::string& chip_id, hil::CharacterizeOptions& options) {
  auto progress = std::move(options.progress);
  options.progress = [&feed, pace = live::Pace(),
                      progress](const hil::CampaignProgress& p) mutable {
    const double fraction =
        p.steps_total ? static_cast<double>(p.steps_done) / static_cast<double>(p.steps_total)
                      : 1.0;
    feed.publish("progress", pace.progress(fraction, "level " + std::to_string(p.level) +
                                                         ", step " + std::to_string(p.steps_done) +
                                                         " of " + std::to_string(p.steps_total)));
    if (progress) progress(p);
  };
  auto levels_done = std::move(options.levels_done);
  const std::string title = "Conductance CDF per level: board " + info.serial + ", chip " + chip_id;
  options.levels_done = [&feed, &board, title,
                         levels_done](const std::vector<hil::LevelSamples>& levels) {
    feed.publish("plot", live::plot_body(hil::cdf_plot(levels, title)));
    feed.publish("link", hil::link_update(board.link_stats(), 0, 0));
    if (levels_done) levels_done(levels);
  };
}

// The per-level table, what became of the cells, the files written and the chip record.
void print_summary(const hil::Characterization& data, const hil::CharacterizationResult& result,
                   const in::BoardInfo& info, const std::filesystem::path& out_dir,
                   const std::string& plot_error, const std::string& registry_note) {
  std::printf("%s", hil::summary_table(result).c_str());
  std::printf("cells: %zu measured, %zu excluded from the fit as bad", data.cells.size(),
              result.bad_cells.size());
  if (!result.bad_cells.empty()) std::printf(" (see bad_cells.csv)");
  std::printf("; %zu of %zu read as unformed (< %.2f uS) and were skipped, never pulsed",
              data.scan.unformed.size(), info.cells(), data.scan.threshold_us);
  if (!data.scan.unformed.empty()) {
    std::printf(" (unformed.csv; form them only with `metaplast board form`)");
  }
  std::printf("\nwrote %s/{samples.csv,cdf.csv,calibration.json%s}\n", out_dir.c_str(),
              plot_error.empty() ? ",cdf.png" : "");
  if (!plot_error.empty())
    std::fprintf(stderr, "characterize: warning: no plot: %s\n", plot_error.c_str());
  if (!registry_note.empty()) std::printf("chip record: %s\n", registry_note.c_str());
}

// The CLI's progress line and log lines, the live view (--live), and the summary at the end.
void run_in_terminal(CharacterizeJob job, const LiveArguments& live_args) {
  const auto progress_line = std::make_shared<util::ProgressLine>();
  job.options.progress = terminal_progress(progress_line);
  job.options.log = [progress_line](const std::string& text) {
    progress_line->clear();
    std::fprintf(stderr, "  %s\n", text.c_str());
    std::fflush(stderr);
  };
  job.on_start = [](const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  };
  hil::check_options(job.options);  // a wrong option fails before a page is served
  const auto live = start_live_view(
      live_options(live_args), {{"command", "characterize"}, {"out_dir", job.out}}, std::nullopt);
  job.live = live ? &live->feed() : nullptr;
  try {
    const CharacterizeOutcome outcome = run_characterize_job(job);
    print_summary(outcome.data, outcome.result, outcome.info, outcome.out_dir, outcome.plot_error,
                  outcome.registry_note);
    end_live_view(
        live.get(), live::RunState::finished, 0,
        "results in " + outcome.out_dir.string() + " (samples.csv, cdf.csv, calibration.json)");
  } catch (const std::exception& e) {
    end_live_view(live.get(), live::RunState::failed, 1, e.what());
    throw;
  }
}

}  // namespace

CharacterizeOutcome run_characterize_job(const CharacterizeJob& a) {
  hil::check_options(a.options);
  if (!a.chip.empty()) hil::validate_chip_id(a.chip);
  board::SessionOptions session;  // --device, else the station file's array-board
  session.device = a.device;
  if (!a.station.empty()) session.station = a.station;
  session.yes = a.yes;
  session.settings = a.settings;
  board::require_pulse_permission("characterize", session);
  // Checked against the station limits before anything is created or sent.
  const in::BoardSettings settings = board::session_settings(session);
  CharacterizeOutcome outcome;
  outcome.out_dir = a.out;
  prepare_output_directory(outcome.out_dir);
  const Station station = load_station(a.station);

  std::optional<devices::Calibration> base;
  if (!a.base_calibration.empty()) base = devices::load_calibration(a.base_calibration);

  board::register_sim_scheme();
  const std::string device = board::board_address(session);
  in::ArrayBoard board(device, station.limits);
  if (!a.record.empty()) {
    board.set_recorder(std::make_shared<in::FrameRecorder>(a.record, device));
  }
  try {
    board.open();
  } catch (const std::exception& e) {
    throw std::runtime_error("characterize: cannot open the board at '" + device +
                             "': " + e.what());
  }
  outcome.info = board.info();
  const auto& info = outcome.info;
  outcome.chip_id = hil::chip_id_for_board(a.chip, station.chip, info.serial);
  if (base) {
    hil::require_same_chip(*base, outcome.chip_id, "--base-calibration " + a.base_calibration);
  }

  // --chips-dir, else the station's "chips_dir", else the default (docs/campaigns.md).
  const std::string chips_dir = a.chips_dir.empty() ? station.chips_dir : a.chips_dir;
  hil::ChipRegistry registry(chips_dir.empty() ? hil::ChipRegistry::default_directory()
                                               : std::filesystem::path(chips_dir));
  auto options = a.options;
  if (!a.no_registry) hil::exclude_known_bad_cells(registry, outcome.chip_id, options);
  if (a.on_start) {
    char line[512];
    std::snprintf(line, sizeof line,
                  "characterize: board %s %s (firmware %s), chip %s: %zu cells x %zu cycles x "
                  "%zu levels",
                  info.model.c_str(), info.serial.c_str(), info.firmware_version.c_str(),
                  outcome.chip_id.c_str(), options.cells, options.cycles, info.levels.size());
    a.on_start(line);
  }

  if (a.live != nullptr) publish_live(*a.live, board, info, outcome.chip_id, options);
  outcome.data = hil::measure_characterization(board, settings, options);
  outcome.result =
      hil::fit_chip_characterization(outcome.data, info, outcome.chip_id,
                                     base.value_or(devices::Calibration::defaults()), a.outlier_z);
  outcome.plot_error =
      hil::write_characterization_files(outcome.data, outcome.result, outcome.out_dir);
  if (!a.no_registry) {
    outcome.registry_note =
        hil::record_characterization(registry, outcome.chip_id, info, outcome.data, outcome.result,
                                     outcome.out_dir / "calibration.json")
            .string();
  }
  return outcome;
}

namespace {

// The `characterize` options on `cmd`, filled into `a`.
void add_characterize_options(CLI::App* cmd, CharacterizeJob& a_) {
  CharacterizeJob* a = &a_;
  cmd->add_option("--device", a->device,
                  "Board address: serial:/dev/ttyUSB0?baud=921600, tcp:HOST:PORT or "
                  "sim:?seed=1&formed=1 (default: the --station file's array-board)");
  cmd->add_option("--cells", a->options.cells, "N: formed cells to measure")->capture_default_str();
  cmd->add_option("--cycles", a->options.cycles, "K: programming cycles per level and cell (>= 2)")
      ->capture_default_str();
  cmd->add_option("--out", a->out,
                  "Output directory: samples.csv, cdf.csv, cdf.png, calibration.json")
      ->required();
  cmd->add_option("--station", a->station,
                  "Station file (JSON): host limits, and \"chip\": the die mounted on it");
  cmd->add_option("--chip", a->chip,
                  "Chip id of the die under test (default: the station file's, else "
                  "board-<serial>)");
  cmd->add_option("--chips-dir", a->chips_dir,
                  "Directory of the per-chip records (default: the station's \"chips_dir\", "
                  "else $METAPLAST_CHIPS, else <repository>/chips)");
  cmd->add_flag("--no-registry", a->no_registry, "Do not read or update the chip record");
  cmd->add_flag("--yes", a->yes,
                "Allow pulses on a board that is not an in-process sim: board (or set "
                "\"allow_pulses\": true in the station file)");
  cmd->add_option("--record", a->record, "Record every frame both ways to FILE (JSON lines)");
  cmd->add_option("--seed", a->options.seed, "Seed of the choice of cells")->capture_default_str();
  cmd->add_option("--read-repeats", a->options.read_repeats,
                  "R: extra reads per level of a subset, without reprogramming (read noise; 0: "
                  "not measured)")
      ->capture_default_str();
  cmd->add_option("--read-cells", a->options.read_cells, "Cells in the read-noise subset")
      ->capture_default_str();
  cmd->add_option("--formed-threshold-us", a->options.formed_threshold_us,
                  "A cell reading at least this is formed (default 0: 0.2 x the LCS target)");
  cmd->add_option("--outlier-z", a->outlier_z,
                  "Cells whose mean at a level is further than this many robust sigmas from the "
                  "others are excluded from the fit as bad")
      ->capture_default_str();
  cmd->add_option("--base-calibration", a->base_calibration,
                  "Calibration of this chip whose unmeasured fields (relaxation, endurance, "
                  "yield, forming, switching) are kept (default: built-in defaults)");
  add_board_settings_options(cmd, a->settings);
}

}  // namespace

void add_characterize_command(CLI::App& root) {
  auto* cmd = root.add_subcommand(
      "characterize",
      "Characterisation campaign (Fig. 4b): program N formed cells K times to every level, read "
      "back, fit the device model into a calibration file");
  auto a = std::make_shared<CharacterizeJob>();
  auto live = std::make_shared<LiveArguments>();
  add_characterize_options(cmd, *a);
  add_live_options(cmd, *live);
  cmd->callback([a, live] { run_in_terminal(*a, *live); });
}

CharacterizeJob parse_characterize_job(const std::vector<std::string>& arguments) {
  CharacterizeJob job;
  CLI::App cmd("metaplast characterize", "characterize");
  add_characterize_options(&cmd, job);
  parse_arguments(cmd, arguments);
  return job;
}

}  // namespace metaplast::cli
