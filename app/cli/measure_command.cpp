// `metaplast measure forming|cell-map|window|retention|read-disturb|endurance`: the device
// measurements of app/bench/ from the command line (docs/bench.md, "Measurements"). The harness
// does the board, the settings, the permission, progress, Ctrl-C and resume; this file only maps
// options and prints the outcome.
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "app/bench/cell_map.hpp"
#include "app/bench/endurance.hpp"
#include "app/bench/forming.hpp"
#include "app/bench/measurement.hpp"
#include "app/bench/read_disturb.hpp"
#include "app/bench/retention.hpp"
#include "app/bench/window.hpp"
#include "app/cli/board_options.hpp"
#include "app/cli/commands.hpp"
#include "app/cli/interrupt.hpp"
#include "app/cli/live_options.hpp"
#include "devices/calibration.hpp"
#include "instruments/board_settings.hpp"
#include "instruments/station_limits.hpp"

namespace metaplast::cli {

namespace {

namespace fs = std::filesystem;

// The options every measurement takes.
struct CommonArgs {
  std::string device, station, chip, record, out, resume;
  bool yes = false;
  instruments::SettingValues settings;
  LiveArguments live;
};

void add_common_options(CLI::App* cmd, CommonArgs& a) {
  cmd->add_option("--device", a.device,
                  "Board address: serial:/dev/ttyUSB0?baud=921600, tcp:HOST:PORT or "
                  "sim:?seed=1&formed=1 (default: the --station file's array-board)");
  cmd->add_option("--station", a.station,
                  "Station file (JSON): limits, board settings, the chip, \"allow_pulses\"");
  cmd->add_option("--chip", a.chip,
                  "Chip id of the die under test (default: the station file's, else "
                  "board-<serial>)");
  cmd->add_flag("--yes", a.yes,
                "Allow pulses on a board that is not an in-process sim: board (or set "
                "\"allow_pulses\": true in the station file)");
  cmd->add_option("--record", a.record, "Record every frame both ways to FILE (JSON lines)");
  auto* out = cmd->add_option("--out", a.out, "Output folder (new): the files of the measurement");
  auto* resume = cmd->add_option("--resume", a.resume,
                                 "Continue the interrupted measurement in DIR (same options and "
                                 "board settings as it was started with)");
  out->excludes(resume);
  resume->excludes(out);
  add_board_settings_options(cmd, a.settings);
  add_live_options(cmd, a.live);
}

// The cells a measurement programs: how many, and the levels.
void add_cells_options(CLI::App* cmd, bench::ProgramPlan& p, const std::string& cells_help) {
  cmd->add_option("--cells", p.cells, cells_help)->capture_default_str();
  cmd->add_option("--levels", p.levels,
                  "Levels to program, e.g. 0,3,8 (0 = LCS; default: every level)")
      ->delimiter(',');
}

// How those cells are chosen and programmed.
void add_programming_options(CLI::App* cmd, bench::ProgramPlan& p) {
  cmd->add_option("--seed", p.seed, "Seed of the choice of cells")->capture_default_str();
  cmd->add_option("--band-us", p.band_us, "Program-and-verify band half-width (uS)")
      ->capture_default_str();
  cmd->add_option("--max-attempts", p.max_attempts, "Program-and-verify pulses per cell at most")
      ->capture_default_str();
  cmd->add_option("--formed-threshold-us", p.formed_threshold_us,
                  "A cell reading at least this is formed (default 0: 0.2 x the LCS target)");
  cmd->add_option("--chunk-cells", p.chunk_cells, "Cells per program-and-verify call")
      ->capture_default_str();
}

bench::HarnessOptions harness_options(const CommonArgs& a) {
  if (a.out.empty() && a.resume.empty()) {
    throw std::invalid_argument("give --out DIR (a new measurement) or --resume DIR");
  }
  bench::HarnessOptions h;
  h.session.device = a.device;
  if (!a.station.empty()) h.session.station = a.station;
  if (!a.record.empty()) h.session.record = a.record;
  h.session.yes = a.yes;
  h.session.settings = a.settings;
  h.chip = a.chip;
  h.out = a.out;
  if (!a.resume.empty()) h.resume = fs::path(a.resume);
  h.log = [](const std::string& line) {
    std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
  };
  return h;
}

// "wrote DIR/{files,measurement.json}" (and why there is no plot).
void print_written(const bench::MeasurementOutcome& outcome) {
  std::string files;
  for (const auto& f : outcome.result.value("files", nlohmann::json::array())) {
    const std::string name = f.get<std::string>();
    if (!outcome.plot_error.empty() && name.ends_with(".png")) continue;
    files += name + ",";
  }
  std::printf("wrote %s/{%smeasurement.json}\n", outcome.dir.c_str(), files.c_str());
  if (!outcome.plot_error.empty()) {
    std::fprintf(stderr, "measure: warning: no plot: %s\n", outcome.plot_error.c_str());
  }
  std::fflush(stdout);
}

// Runs the measurement with its live view (--live) and prints the outcome; an interrupted
// measurement exits with 130 (as Ctrl-C in a shell).
void run_and_report(bench::Measurement& m, const CommonArgs& a,
                    const std::function<void(const nlohmann::json&)>& print_fit) {
  bench::HarnessOptions options = harness_options(a);
  const live::LiveOptions live_view = live_options(a.live);
  m.check_options();  // a wrong option fails before a page is served (run_measurement checks too)
  InterruptHandler handler(InterruptHandler::Stops::after_batch);
  options.stop_requested = [] { return InterruptHandler::stop_requested().load(); };
  const fs::path dir = a.resume.empty() ? fs::path(a.out) : fs::path(a.resume);
  const auto live =
      start_live_view(live_view, {{"command", "measure " + m.kind()}, {"out_dir", dir.string()}},
                      dir / kStopRequestsFile);
  options.live = live ? &live->feed() : nullptr;
  bench::MeasurementOutcome outcome;
  try {
    outcome = bench::run_measurement(m, options);
  } catch (const std::exception& e) {
    end_live_view(live.get(), live::RunState::failed, 1, e.what());
    throw;
  }
  const auto& r = outcome.record;
  std::printf("%s: board %s %s, chip %s, %s\n", m.kind().c_str(), r.board.model.c_str(),
              r.board.serial.c_str(), r.chip_id.c_str(), r.status.c_str());
  print_fit(outcome.result);
  print_written(outcome);
  if (outcome.status == bench::MeasurementStatus::interrupted) {
    std::fprintf(stderr, "measure %s: interrupted (Ctrl-C); the board is in its safe state; %s\n",
                 m.kind().c_str(), outcome.resume_hint.c_str());
    end_live_view(live.get(), live::RunState::stopped, kInterruptedExitStatus, outcome.resume_hint);
    std::exit(kInterruptedExitStatus);
  }
  end_live_view(live.get(), live::RunState::finished, 0, "results in " + dir.string());
}

std::string parameter_text(const nlohmann::json& p,
                           const char* unidentifiable = "not identifiable from these times") {
  char text[200];
  const auto& se = p.at("standard_error");  // null: not estimable
  std::snprintf(
      text, sizeof text, "%.4g +- %.2g%s%s", p.at("value").get<double>(),
      se.is_number() ? se.get<double>() : std::nan(""),
      p.value("unit", "").empty() ? "" : (" " + p.value("unit", "")).c_str(),
      p.at("identifiable").get<bool>() ? "" : (std::string(" (") + unidentifiable + ")").c_str());
  return text;
}

// The --base-calibration file's calibration, the built-in one without it.
devices::Calibration base_calibration(const std::string& file) {
  return file.empty() ? devices::Calibration::defaults() : devices::load_calibration(file);
}

void add_retention(CLI::App* measure) {
  auto* cmd = measure->add_subcommand(
      "retention",
      "Retention / drift: program N formed cells to the levels, read them at log-spaced times "
      "after programming (seconds to hours, on the board's clock), fit relaxation and drift");
  auto common = std::make_shared<CommonArgs>();
  auto o = std::make_shared<bench::RetentionOptions>();
  add_cells_options(cmd, o->programming, "N: cells programmed and followed");
  cmd->add_option("--times", o->times_s,
                  "Read times after programming (s), e.g. 1,10,100 (default: --start/--stop/"
                  "--points)")
      ->delimiter(',');
  cmd->add_option("--start", o->start_s, "First read time (s)")->capture_default_str();
  cmd->add_option("--stop", o->stop_s, "Last read time (s)")->capture_default_str();
  cmd->add_option("--points", o->points, "Read times, log-spaced from --start to --stop")
      ->capture_default_str();
  add_programming_options(cmd, o->programming);
  add_common_options(cmd, *common);
  cmd->callback([common, o] {
    bench::RetentionMeasurement m(*o);
    run_and_report(m, *common, [](const nlohmann::json& result) {
      if (!result.contains("fit")) {
        std::printf("fit: too few time points measured\n");
        return;
      }
      const auto& r = result["fit"]["relaxation"];
      for (const char* key : {"step_mean_rel", "step_sigma_rel", "step_time_constant_s",
                              "drift_per_decade_rel", "drift_reference_s"}) {
        std::printf("  %-22s %s\n", key, parameter_text(r[key]).c_str());
      }
    });
  });
}

constexpr const char* kWithinNoise = "not determined: within the noise of the reads";

void add_read_disturb(CLI::App* measure) {
  auto* cmd = measure->add_subcommand(
      "read-disturb",
      "Read disturb: program N formed cells to the levels, read each R times at the read "
      "voltage (--read-voltage), fit the conductance change per read");
  auto common = std::make_shared<CommonArgs>();
  auto o = std::make_shared<bench::ReadDisturbOptions>();
  auto base = std::make_shared<std::string>();
  add_cells_options(cmd, o->programming, "N: cells programmed and read");
  cmd->add_option("--reads", o->reads, "R: reads of every cell")->capture_default_str();
  cmd->add_option("--points", o->points, "Read counts recorded, log-spaced from 1 to R")
      ->capture_default_str();
  cmd->add_option("--settle-s", o->settle_s,
                  "Wait this long (board clock, s) after programming before the first read")
      ->capture_default_str();
  add_programming_options(cmd, o->programming);
  cmd->add_option("--base-calibration", *base,
                  "Calibration whose read-disturb onset and slope the rel_per_read fit assumes "
                  "(default: built-in)");
  add_common_options(cmd, *common);
  cmd->callback([common, o, base] {
    bench::ReadDisturbMeasurement m(*o, base_calibration(*base).read_disturb);
    run_and_report(m, *common, [](const nlohmann::json& result) {
      if (!result.contains("fit")) {
        std::printf("fit: too few read counts measured\n");
        return;
      }
      const auto& f = result["fit"];
      std::printf("  %-22s %s\n", "delta_per_read",
                  parameter_text(f["delta_per_read"], kWithinNoise).c_str());
      for (const auto& l : f["levels"]) {
        std::printf("    level %-2d (%3d cells)   %.4g +- %.2g\n", l["level"].get<int>(),
                    l["cells"].get<int>(), l["delta_per_read"].get<double>(),
                    l["standard_error"].get<double>());
      }
      if (f.contains("read_disturb")) {
        std::printf("  %-22s %s (onset %.3g V, slope %.3g V assumed)\n", "rel_per_read",
                    parameter_text(f["read_disturb"]["rel_per_read"], kWithinNoise).c_str(),
                    f["read_disturb"]["onset_voltage_v"]["value"].get<double>(),
                    f["read_disturb"]["slope_v"]["value"].get<double>());
      }
    });
  });
}

// The block of cells a measurement covers.
void add_block_options(CLI::App* cmd, bench::CellBlock& b) {
  cmd->add_option("--row0", b.row0, "First row of the block")->capture_default_str();
  cmd->add_option("--col0", b.col0, "First column of the block")->capture_default_str();
  cmd->add_option("--rows", b.rows, "Rows of the block (128: every row)")->capture_default_str();
  cmd->add_option("--cols", b.cols, "Columns of the block (128: every column)")
      ->capture_default_str();
}

void add_forming(CLI::App* measure) {
  auto* cmd = measure->add_subcommand(
      "forming",
      "Forming ramp: FORM the pristine cells of a block with a rising bit-line voltage, one "
      "batched FORM and READ per step, until each reads formed; map and fit the forming "
      "voltages");
  auto common = std::make_shared<CommonArgs>();
  auto o = std::make_shared<bench::FormingOptions>();
  auto base = std::make_shared<std::string>();
  add_block_options(cmd, o->block);
  cmd->add_option("--start-v", o->start_v, "First FORM bit-line voltage (V)")
      ->capture_default_str();
  cmd->add_option("--stop-v", o->stop_v, "Last FORM bit-line voltage (V)")->capture_default_str();
  cmd->add_option("--step-v", o->step_v, "Ramp step (V)")->capture_default_str();
  cmd->add_option("--width-ns", o->width_ns, "FORM pulse width (ns)")->capture_default_str();
  cmd->add_option("--compliance-v", o->compliance_v,
                  "FORM word-line (gate) voltage: the compliance of the forming current (V)")
      ->capture_default_str();
  cmd->add_option("--threshold-us", o->threshold_us, "A cell reading at least this is formed (uS)")
      ->capture_default_str();
  cmd->add_option("--base-calibration", *base,
                  "Calibration whose forming reference width and width_v_per_decade convert the "
                  "fit to the reference width (default: built-in)");
  add_common_options(cmd, *common);
  cmd->callback([common, o, base] {
    bench::FormingMeasurement m(*o, base_calibration(*base).forming);
    run_and_report(m, *common, [](const nlohmann::json& result) {
      if (!result.contains("calibration")) {
        std::printf("fit: fewer than 2 cells formed in the ramp\n");
      } else {
        std::printf("  formed %d, formed before the ramp %d, not formed by %.3f V: %d\n",
                    result["formed"].get<int>(), result["formed_before"].get<int>(),
                    result["last_voltage_v"].get<double>(), result["unformed"].get<int>());
        for (const char* key : {"/forming/median_voltage_v", "/forming/sigma_v"}) {
          std::printf("  %-26s %s\n", key,
                      parameter_text(result["calibration"][key],
                                     "not identifiable: the ramp starts or stops inside the "
                                     "distribution")
                          .c_str());
        }
      }
      const auto& cells = result["unformed_cells"];
      std::string list;
      for (std::size_t i = 0; i < cells.size() && i < 32; ++i) {
        list += " (" + cells[i]["row"].dump() + "," + cells[i]["col"].dump() + ")";
      }
      if (cells.size() > 32) list += " ... (" + std::to_string(cells.size()) + " in all)";
      if (!cells.empty()) std::printf("  not formed (row,col):%s\n", list.c_str());
    });
  });
}

void add_cell_map(CLI::App* measure) {
  auto* cmd = measure->add_subcommand(
      "cell-map",
      "Cell map: read the whole array once (no pulses), or take a saved whole-array read "
      "(--from), and classify every cell as formed, unformed, unformable, stuck or bad (the chip "
      "registry's bad cells)");
  auto common = std::make_shared<CommonArgs>();
  auto o = std::make_shared<bench::CellMapOptions>();
  cmd->add_option("--formed-threshold-us", o->formed_threshold_us,
                  "A cell reading at least this is formed (default 0: 0.13 x the LCS target)");
  cmd->add_option("--stuck-above-us", o->stuck_above_us,
                  "A cell reading above this is stuck (default 0: 2 x the highest level's "
                  "target)");
  cmd->add_flag("--counters,!--no-counters", o->counters,
                "Use the board's FORM pulse counters (unformable: unformed after FORM pulses; "
                "stuck: formed without any)")
      ->capture_default_str();
  cmd->add_option("--chips-dir", o->chips_dir,
                  "Chip registry whose bad cells of the chip are marked \"bad\" (default: the "
                  "station's \"chips_dir\", else none for an in-process sim: board, else "
                  "$METAPLAST_CHIPS, else <repository>/chips)");
  add_common_options(cmd, *common);
  auto* from = cmd->add_option("--from", o->from,
                               "Map a saved whole-array read instead of the board: a `board read` "
                               "CSV, a training snapshot (.h5), a cell map's cell_map.h5 or .csv");
  for (const char* board_option : {"--device", "--station", "--resume", "--record", "--yes"}) {
    from->excludes(cmd->get_option(board_option));
  }
  cmd->callback([common, o] {
    const auto print_classes = [](const nlohmann::json& result) {
      const nlohmann::json classes = result.value("classes", nlohmann::json::object());
      for (const auto& [name, count] : classes.items()) {
        std::printf("  %-11s %6d cells\n", name.c_str(), count.get<int>());
      }
      if (!result.value("counters", true)) {
        std::printf("  no FORM counters: unformable not assigned, stuck only above %.4g uS\n",
                    result.value("stuck_above_us", 0.0));
      }
      std::printf("  bad cells: %s\n", result.value("chip_registry", std::string()).c_str());
    };
    // --chips-dir, else the station's "chips_dir" (as characterize), else ChipRegistry::for_run.
    if (o->chips_dir.empty() && !common->station.empty()) {
      o->chips_dir = instruments::load_station(common->station).chips_dir;
    }
    if (o->from.empty()) {
      bench::CellMapMeasurement m(*o);
      run_and_report(m, *common, print_classes);
      return;
    }
    if (!common->settings.empty()) {
      throw std::invalid_argument("--from reads a saved file: no board, so no board settings (" +
                                  common->settings.begin()->first +
                                  " given): remove them, or map the board without --from");
    }
    if (common->out.empty()) throw std::invalid_argument("give --out DIR (a new folder)");
    if (!common->live.port.empty()) {
      throw std::invalid_argument(
          "--live with --from: a saved file is mapped at once, nothing "
          "to watch; remove --live");
    }
    const auto outcome = bench::map_saved_read(
        *o, common->chip, common->out,
        [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
    std::printf("cell-map: %s, chip %s, %s\n",
                outcome.record.source["path"].get<std::string>().c_str(),
                outcome.record.chip_id.empty() ? "unknown" : outcome.record.chip_id.c_str(),
                outcome.record.status.c_str());
    print_classes(outcome.result);
    print_written(outcome);
  });
}

constexpr const char* kFewFailures = "not determined: too few cells failed";

void add_endurance(CLI::App* measure) {
  auto* cmd = measure->add_subcommand(
      "endurance",
      "Endurance: cycle the formed cells of a region (--rows, --cols) SET/RESET until their "
      "HRS/LRS window closes or N cycles, reading at log-spaced cycles; fit the log-normal "
      "cycles to failure");
  auto common = std::make_shared<CommonArgs>();
  auto o = std::make_shared<bench::EnduranceOptions>();
  cmd->add_option("--rows", o->rows, "First and last row of the region, e.g. 0,15 (required)")
      ->delimiter(',')
      ->required();
  cmd->add_option("--cols", o->cols, "First and last column of the region, e.g. 0,15 (required)")
      ->delimiter(',')
      ->required();
  cmd->add_option("--cycles", o->cycles, "N: SET/RESET cycles at most")->capture_default_str();
  cmd->add_option("--points", o->points, "Read points, log-spaced from cycle 1 to N")
      ->capture_default_str();
  cmd->add_option("--read-every", o->read_every,
                  "Read every K cycles instead of log-spaced (0: log-spaced)")
      ->capture_default_str();
  cmd->add_option("--set-level", o->set_level, "SET compliance level (0: the board's highest)")
      ->capture_default_str();
  cmd->add_option("--window-factor", o->window_factor,
                  "The window is closed when G_LRS < factor x G_HRS")
      ->capture_default_str();
  cmd->add_option("--confirm-points", o->confirm_points,
                  "Consecutive closed read points that fail a cell")
      ->capture_default_str();
  cmd->add_option("--formed-threshold-us", o->formed_threshold_us,
                  "A cell reading at least this is cycled (default 0: 0.2 x the LCS target)");
  add_common_options(cmd, *common);
  cmd->callback([common, o] {
    bench::EnduranceMeasurement m(*o);
    run_and_report(m, *common, [](const nlohmann::json& result) {
      std::printf("  %zu cells, %llu cycles: %zu alive, %zu failed, %zu dead on arrival\n",
                  result["cells"].get<std::size_t>(),
                  result["cycles_done"].get<unsigned long long>(),
                  result["alive"].get<std::size_t>(), result["failed"].get<std::size_t>(),
                  result["dead_on_arrival"].get<std::size_t>());
      if (!result.contains("fit")) {
        std::printf("fit: no cell wore out yet (dead on arrival left out)\n");
        return;
      }
      const auto& f = result["fit"];
      std::printf("  fit of %zu cells: %zu failed (stuck high %zu, low %zu), %zu censored\n",
                  f["cells"].get<std::size_t>(), f["failed"].get<std::size_t>(),
                  f["stuck_high"].get<std::size_t>(), f["stuck_low"].get<std::size_t>(),
                  f["censored"].get<std::size_t>());
      std::printf("  %-22s %s (%.4g cycles)\n", "median_pulses",
                  parameter_text(f["median_pulses"], kFewFailures).c_str(),
                  f["median_cycles"].get<double>());
      for (const char* key : {"sigma_ln", "stuck_hcs_probability"}) {
        std::printf("  %-22s %s\n", key, parameter_text(f[key], kFewFailures).c_str());
      }
    });
  });
}

void add_window(CLI::App* measure) {
  auto* cmd = measure->add_subcommand(
      "window",
      "Programming window: sweep the SET gate voltage (I_CC), bit-line amplitude and/or width; "
      "per point RESET, read, SET (explicit pulse), read N formed cells; fit the I_CC table, "
      "the SET S-curve, the over-drive and width slopes");
  auto common = std::make_shared<CommonArgs>();
  auto o = std::make_shared<bench::WindowOptions>();
  auto sweeps = std::make_shared<std::array<std::string, 3>>();
  cmd->add_option("--cells", o->cells, "N: formed cells pulsed at every point")
      ->capture_default_str();
  cmd->add_option("--gate-v", (*sweeps)[0],
                  "SET gate (word-line) voltages (V): start:stop:step or a,b,c (default: the "
                  "board's top level's gate)");
  cmd->add_option("--bl-v", (*sweeps)[1],
                  "SET bit-line amplitudes (V): start:stop:step or a,b,c (default: the "
                  "set_bl_voltage_v setting)");
  cmd->add_option("--width-ns", (*sweeps)[2],
                  "SET widths (ns): start:stop:step or a,b,c (default: the set_pulse_width_ns "
                  "setting)");
  cmd->add_option("--switched-threshold-us", o->switched_threshold_us,
                  "A cell has switched when it reads at least this after SET (default 0: midway "
                  "between the LCS and level-1 targets)");
  cmd->add_option("--seed", o->seed, "Seed of the choice of cells")->capture_default_str();
  cmd->add_option("--formed-threshold-us", o->formed_threshold_us,
                  "A cell reading at least this is formed (default 0: 0.2 x the LCS target)");
  add_common_options(cmd, *common);
  cmd->callback([common, o, sweeps] {
    const char* keys[] = {"gate-v", "bl-v", "width-ns"};
    std::vector<double>* axes[] = {&o->gate_v, &o->bl_v, &o->width_ns};
    for (int i = 0; i < 3; ++i) {
      if (!(*sweeps)[i].empty()) *axes[i] = bench::parse_sweep(keys[i], (*sweeps)[i]);
    }
    bench::WindowMeasurement m(*o);
    run_and_report(m, *common, [](const nlohmann::json& result) {
      const auto& cal = result.value("calibration", nlohmann::json::object());
      for (const auto& [key, p] : cal.items()) {
        if (key == "/hcs_levels") continue;
        std::printf("  %-36s %s\n", key.c_str(),
                    parameter_text(p, "not identifiable from this sweep").c_str());
      }
      if (cal.contains("/hcs_levels")) {
        std::printf("  /hcs_levels (gate V, I_CC uA, median uS, spread uS):\n");
        for (const auto& l : cal["/hcs_levels"]["value"]) {
          std::printf("    level %-2d %.3f V %6.1f uA %8.2f uS %6.2f uS\n", l["level"].get<int>(),
                      l["gate_voltage_v"].get<double>(), l["icc_ua"].get<double>(),
                      l["median_conductance_us"].get<double>(), l["c2c_sigma_us"].get<double>());
        }
        // The measured medians as the verify targets of a level table at these gates
        // (docs/bench.md, "The level table"), as the command line takes it.
        instruments::SettingValue gates, targets;
        for (const auto& l : cal["/hcs_levels"]["value"]) {
          gates.push_back(l["gate_voltage_v"].get<double>());
          targets.push_back(std::round(l["median_conductance_us"].get<double>() * 100) / 100);
        }
        std::string args;
        for (const auto& a : instruments::setting_arguments(
                 {{"level_gate_voltages_v", gates}, {"level_targets_us", targets}})) {
          args += " " + a;
        }
        std::printf("  as a level table:%s\n", args.c_str());
      }
      if (cal.empty()) std::printf("fit: too few sweep points measured\n");
    });
  });
}

}  // namespace

void add_measure_command(CLI::App& root) {
  auto* measure = root.add_subcommand(
      "measure",
      "Device measurements at the bench: forming, cell-map, window, retention, read-disturb, "
      "endurance (docs/bench.md)");
  measure->require_subcommand(1);
  add_forming(measure);
  add_cell_map(measure);
  add_window(measure);
  add_retention(measure);
  add_read_disturb(measure);
  add_endurance(measure);
}

}  // namespace metaplast::cli
