// `metaplast train`: the metaplastic quantized network trained in software on a sequence of tasks.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "app/board/board_session.hpp"
#include "app/cli/board_options.hpp"
#include "app/cli/commands.hpp"
#include "app/cli/interrupt.hpp"
#include "app/cli/live_options.hpp"
#include "app/hil/memory_report.hpp"
#include "app/hil/pipeline.hpp"
#include "app/hil/placement.hpp"
#include "app/hil/training_run.hpp"
#include "app/learning/dataset.hpp"
#include "app/learning/trainer.hpp"
#include "common/json_file.hpp"
#include "instruments/station_limits.hpp"

namespace metaplast::cli {

namespace {

namespace fs = std::filesystem;
using learning::TrainConfig;

struct TrainArguments {
  TrainConfig config;
  // Names of the enum options, at TrainConfig's defaults.
  std::string rule{learning::to_string(config.rule)};
  std::string bn{learning::to_string(config.batchnorm)};
  std::string bn_stats{learning::to_string(config.batchnorm_stats)};
  std::string init_mode{learning::to_string(config.init_mode)};
  std::string data_dir, out_dir, resume_dir;
  std::string device, calibration, chips_dir;
  std::string preset;
  std::string station;
  std::string record;
  std::string mapping = "single";
  int repeat = 1;
  bool yes = false;  // permission to pulse a board that is not simulated
  instruments::SettingValues settings;  // board settings given on the command line
  bool allow_settings_change = false;
  LiveArguments live;
};

std::string timestamped_run_dir() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm local{};
  localtime_r(&now, &local);
  char buf[64];
  std::strftime(buf, sizeof buf, "runs/%Y%m%d-%H%M%S", &local);
  return buf;
}

TrainConfig config_from_arguments(const TrainArguments& args) {
  TrainConfig c = args.config;
  c.rule = learning::parse_rule(args.rule);
  c.batchnorm = learning::parse_batchnorm_protocol(args.bn);
  c.batchnorm_stats = learning::parse_batchnorm_stats(args.bn_stats);
  c.init_mode = learning::parse_init_mode(args.init_mode);
  c.data_dir = args.data_dir.empty() ? learning::default_data_dir() : fs::path(args.data_dir);
  c.device = args.device;
  c.calibration = args.calibration;
  c.chips_dir = args.chips_dir;
  c.mapping = args.mapping;
  c.board_settings = instruments::to_json(args.settings);
  c.allow_settings_change = args.allow_settings_change;
  return c;
}

// The options of the run in `dir`, checked against every option given on this command line.
TrainConfig resumed_config(const CLI::App& command, const TrainArguments& args) {
  const fs::path dir = args.resume_dir;
  const fs::path config_file = dir / learning::kConfigFile;
  if (!fs::is_regular_file(config_file)) {
    throw std::invalid_argument("--resume " + dir.string() + ": no " + config_file.string() +
                                "; is this a metaplast run directory?");
  }
  TrainConfig config;
  try {
    const nlohmann::json stored = common::read_json_file(config_file);
    if (!stored.is_object() || !stored.contains("options")) {
      throw std::invalid_argument("/options: missing (the run's options object)");
    }
    config = TrainConfig::from_json(stored["options"]);
  } catch (const common::JsonFileError& e) {
    throw std::invalid_argument(std::string("--resume: ") + e.what());
  } catch (const std::invalid_argument& e) {
    // from_json names the option ("config: option 'epochs' ..."); say which file it is in.
    std::string what = e.what();
    if (what.rfind("config: ", 0) == 0) what = "/options: " + what.substr(8);
    throw std::invalid_argument("--resume: " + config_file.string() + ": " + what);
  }
  // Both sides complete: keys a config.json leaves out (options newer than the run, or at their
  // first value) compare as the values they stand for.
  const nlohmann::json given =
      TrainConfig::with_first_values(config_from_arguments(args).to_json());
  const nlohmann::json saved = TrainConfig::with_first_values(config.to_json());
  for (const auto& [key, value] : given.items()) {
    // The data may move (its sha256 is checked instead); the board may get another address.
    // The board settings in force are compared by the trainer (hil::run_training).
    if (key == "data" || key == "device" || key == "chips-dir" || key == "board-settings") {
      continue;
    }
    if (command.get_option("--" + key)->count() > 0 &&
        saved.value(key, nlohmann::json()) != value) {
      throw std::invalid_argument(
          "--resume " + dir.string() + ": --" + key + " " + value.dump() +
          " differs from the run's " + saved.value(key, nlohmann::json()).dump() + " (" +
          config_file.string() + "); drop the option, or start a new run with --out");
    }
  }
  if (command.get_option("--data")->count() > 0) config.data_dir = args.data_dir;
  if (command.get_option("--device")->count() > 0) config.device = args.device;
  // --station: the board's address now (the chip is the run's, checked by the trainer).
  if (!args.station.empty()) {
    config.station = args.station;
    if (command.get_option("--device")->count() == 0) {
      config.device = instruments::resolve_board_address("", fs::path(args.station));
    }
  }
  if (command.get_option("--chips-dir")->count() > 0) config.chips_dir = args.chips_dir;
  config.board_settings.update(instruments::to_json(args.settings));
  config.allow_settings_change = args.allow_settings_change;
  if (command.get_option("--out")->count() > 0 &&
      fs::weakly_canonical(args.out_dir) != fs::weakly_canonical(dir)) {
    throw std::invalid_argument(
        "--out and --resume name different directories; a resumed run "
        "continues in its own directory (drop --out)");
  }
  return config;
}

// The end-of-run summary for a terminal: test accuracy after each task (in training order),
// writes against endurance, the memory report.
void print_results(const nlohmann::json& summary, const fs::path& out, bool repetitions) {
  fs::path run_dir = out;
  nlohmann::json run = summary;
  if (repetitions) {
    run_dir = summary["runs"][0].get<std::string>();
    run = common::read_json_file(run_dir / learning::kSummaryFile);
  }
  const auto tasks = run["config"]["options"]["tasks"].get<std::vector<std::string>>();
  if (repetitions) {
    std::printf("test accuracy over %zu runs (mean +- std, %%):\n", summary["runs"].size());
    for (const std::string& trained : tasks) {
      std::printf("  after %-8s", trained.c_str());
      for (const std::string& task : tasks) {
        if (!summary["after_task"].contains(trained)) continue;
        const auto& s = summary["after_task"].at(trained);
        if (!s.contains(task)) continue;
        std::printf("  %s %.2f +- %.2f", task.c_str(), 100.0 * s[task]["mean"].get<double>(),
                    100.0 * s[task]["std"].get<double>());
      }
      std::printf("\n");
    }
    if (summary.contains("writes_max_per_cell")) {
      std::printf("max programming operations per device: mean %.0f, max %.0f over the runs\n",
                  summary["writes_max_per_cell"]["mean"].get<double>(),
                  summary["writes_max_per_cell"]["max"].get<double>());
    }
    std::printf("repetitions: %s/repeat_summary.json (.csv); the first run:\n",
                out.string().c_str());
  }
  std::printf("test accuracy (%%):\n");
  for (const std::string& trained : tasks) {
    std::printf("  after %-8s", trained.c_str());
    for (const std::string& task : tasks) {
      const auto& a = run["after_task"][trained];
      if (a.is_object() && a.contains(task))
        std::printf("  %s %.2f", task.c_str(), 100.0 * a[task].get<double>());
    }
    std::printf("\n");
  }
  if (run.contains("writes") && run.contains("store")) {
    const auto& w = run["writes"];
    std::string placement;
    for (const auto& p : run["store"]["placement"]) {
      placement += (placement.empty() ? "" : ",") + p.get<std::string>();
    }
    std::printf("placement %s (input layer first), %s mapping, %zu levels\n", placement.c_str(),
                run["store"].value("mapping", "single").c_str(), run["store"]["levels"].size());
    std::printf(
        "programming operations per epoch (SET/RESET pulses incl. verify retries; ideal layers: "
        "level changes): %s, initial programming %s\n",
        w["per_epoch"].dump().c_str(), w["initial"].dump().c_str());
    const double max_per_cell = w["max_per_cell"].get<double>();
    std::printf(
        "max per device after all tasks: %.0f (HfO2 endurance 1e5-1e7: %.1e of the low end)\n",
        max_per_cell, max_per_cell / 1e5);
  }
  if (run.contains("memory")) {
    std::printf("%s\n", hil::memory_report_line(run["memory"]).c_str());
  }
  std::printf("run directory: %s (metrics.csv, summary.json, endurance.csv/.png, memory.json)\n",
              run_dir.string().c_str());
}

// The network and its learning rule.
void add_network_options(CLI::App* train, TrainArguments& args) {
  TrainConfig& c = args.config;
  train->add_option("--tasks", c.tasks, "Tasks in training order (mnist, fashion)")
      ->delimiter(',')
      ->capture_default_str();
  train->add_option("--epochs", c.epochs, "Epochs per task")->capture_default_str();
  train->add_option("--mstar", c.mstar, "Metaplasticity m* (0 = plain Adam)")
      ->capture_default_str();
  train
      ->add_option("--rule", args.rule,
                   "Meta-function: importance or depth (selective, docs/method.md 6), interval "
                   "(docs/method.md 1), interval-whole or global (BNN)")
      ->capture_default_str();
  train
      ->add_option("--depth-rate", c.depth_rate,
                   "Rule depth: the fraction of a step toward an inner level that becomes "
                   "consolidation depth")
      ->capture_default_str();
  train
      ->add_option("--projection", c.projection,
                   "Gradient projection: the share in [0, 1) of each finished task's input energy "
                   "per layer whose directions later tasks may not move (0 = off; e.g. 0.99; "
                   "docs/method.md 5.1)")
      ->capture_default_str();
  train
      ->add_option("--projection-feedback", c.projection_feedback,
                   "Gradient projection: the share of the quantized weights' drift inside the "
                   "protected directions fed back (at every --projection-feedback-every-th step)")
      ->capture_default_str();
  train
      ->add_option("--projection-feedback-every", c.projection_feedback_every,
                   "Gradient projection: steps of a task between two feedbacks (1 = every step; "
                   "larger values rewrite far fewer levels, docs/method.md 5.1)")
      ->capture_default_str();
  train->add_option("--hidden", c.hidden, "Hidden layer sizes")
      ->delimiter(',')
      ->capture_default_str();
  train
      ->add_option(
          "--levels", c.levels,
          "Quantization levels, uniform in [-1, 1] (device runs: the calibration's levels)")
      ->capture_default_str();
  train
      ->add_option("--init", c.init,
                   "Initial spread of the hidden weights: U(-W, W) (uniform) or W half-widths "
                   "around a threshold (thresholds)")
      ->capture_default_str();
  train
      ->add_option("--init-mode", args.init_mode,
                   "uniform: W_H ~ U(-W, W); thresholds: on a random threshold T_j, displaced by "
                   "W times its half-width (W <= 1 keeps the starting level)")
      ->capture_default_str();
  train->add_option("--bn", args.bn, "BatchNorm state testing old tasks: per-task or shared")
      ->capture_default_str();
  train
      ->add_option("--bn-stats", args.bn_stats,
                   "Test-time BatchNorm statistics: running or batch (the test batch's own)")
      ->capture_default_str();
}

// The optimizer, the data and where the run goes.
void add_training_options(CLI::App* train, TrainArguments& args) {
  TrainConfig& c = args.config;
  train->add_option("--lr", c.learning_rate, "Adam learning rate")->capture_default_str();
  train
      ->add_option("--lr-decay", c.lr_decay,
                   "Within each task, epoch e trains with lr * F^e (1: constant)")
      ->capture_default_str();
  train->add_option("--batch", c.batch, "Batch size")->capture_default_str();
  train->add_option("--seed", c.seed, "Random seed (initialisation and shuffling)")
      ->capture_default_str();
  train
      ->add_option("--train-limit", c.train_limit,
                   "Use only the first N training images of each task (0 = all)")
      ->capture_default_str();
  train
      ->add_option("--validation", c.validation,
                   "Hold out the last fraction F of each training set for validation")
      ->capture_default_str();
  train->add_option("--threads", c.threads, "Threads (BLAS and optimizer)")->capture_default_str();
  train->add_option("--data", args.data_dir,
                    "Dataset directory (default: $METAPLAST_DATA or <repo>/data)");
  train->add_option("--out", args.out_dir, "Run directory (default: runs/<timestamp>)");
}

// Where the weights live: ideal, virtual devices or the board, and the chip under test.
void add_device_options(CLI::App* train, TrainArguments& args) {
  TrainConfig& c = args.config;
  train
      ->add_option("--placement", c.placement,
                   "Where each layer's weights live: ideal, virtual, board, or a list per layer "
                   "(input layer first), e.g. virtual,virtual,board")
      ->capture_default_str();
  train->add_option("--device", args.device,
                    "Array board address for board layers (sim:?formed=1, tcp:HOST:PORT, "
                    "serial:/dev/ttyUSB0); with --device the default placement is the output "
                    "layer on the board, the others virtual");
  train->add_option("--calibration", args.calibration,
                    "Calibration file (levels Q_i and virtual devices; default: the simulated "
                    "board's default calibration)");
  train
      ->add_option("--reread-every", c.reread_every,
                   "Re-read the placed devices every K steps (0: keep the verify reads)")
      ->capture_default_str();
  train
      ->add_option("--mapping", args.mapping,
                   "Weights on devices: single (one device per weight, the calibration's 9 "
                   "levels) or differential (a pair G+ - G- per weight, 17 levels, twice the "
                   "devices)")
      ->check(CLI::IsMember({"single", "differential"}))
      ->capture_default_str();
  train->add_option("--chips-dir", args.chips_dir,
                    "Chip registry directory (bad cells, writes; default: the station's "
                    "\"chips_dir\", else none for a sim: board, else $METAPLAST_CHIPS, else "
                    "<repository>/chips)");
  train->add_option("--chip", c.chip, "Chip id of the die under test");
}

// The preset, repetitions, the station, the frame recording and resuming.
void add_session_options(CLI::App* train, TrainArguments& args) {
  train
      ->add_option("--preset", args.preset,
                   "on-chip: 784-20-10 (15,880 weights) entirely on the board's 16,384 cells, "
                   "with its own defaults: --rule global --mstar 4 --init-mode uniform --init "
                   "0.05 --lr-decay 1 --epochs 20 (docs/method.md 5)")
      ->check(CLI::IsMember({"on-chip"}));
  train
      ->add_option("--repeat", args.repeat,
                   "Run N times with seeds SEED..SEED+N-1 (device samplings) into OUT/seed-S and "
                   "write OUT/repeat_summary.json/.csv (mean and std per task and epoch)")
      ->capture_default_str();
  train->add_option(
      "--station", args.station,
      "Station file (JSON, docs/campaigns.md): the board address (its array-board) "
      "and the chip, where --device / --chip are not given, and the host safety limits "
      "enforced on the board");
  train->add_option("--record", args.record,
                    "Record every frame to and from the board, both ways, to FILE (JSON lines; "
                    "replay with `metaplast board replay`); only with layers on a board");
  train->add_flag("--yes", args.yes,
                  "Allow the board layers on a board that is not an in-process sim: board (or "
                  "set \"allow_pulses\": true in the station file)");
  train->add_option("--resume", args.resume_dir,
                    "Continue the killed run in this directory (its config.json is reused)");
  train->add_flag("--allow-settings-change", args.allow_settings_change,
                  "With --resume: continue even if the board settings in force differ from "
                  "those the run started with (summary.json records the new ones)");
  add_board_settings_options(train, args.settings);
  add_live_options(train, args.live);
}

// A new run's options: the command line, the station's board and chip, the preset, and the
// placement that a board address implies.
TrainConfig new_run_config(const CLI::App& train, const TrainArguments& args) {
  TrainConfig config = config_from_arguments(args);
  if (!args.station.empty()) {  // the board, chip and safety limits of the station
    config.station = args.station;
    config.device = instruments::resolve_board_address(config.device, fs::path(args.station));
    const instruments::Station station = instruments::load_station(args.station);
    if (config.chip.empty()) config.chip = station.chip;
    if (config.chips_dir.empty()) config.chips_dir = station.chips_dir;
  }
  const bool placement_given = train.get_option("--placement")->count() > 0;
  if (args.preset == "on-chip") {
    learning::apply_on_chip_preset(config, [&](std::string_view name) {
      return train.get_option("--" + std::string(name))->count() > 0;
    });
  } else if (!config.device.empty() && !placement_given) {
    config.placement = hil::default_board_placement(config.hidden.size() + 1);
  }
  if (config.device.empty() && config.placement.find("board") != std::string::npos) {
    config.device = "sim:?formed=1";
    std::printf("no --device: the board layers go to the in-process simulated board (%s)\n",
                config.device.c_str());
  }
  return config;
}

// A layer on a board that is not simulated needs permission (board::require_pulse_permission).
void require_board_permission(const TrainConfig& config, bool yes) {
  if (config.placement.find("board") == std::string::npos || config.device.empty()) return;
  board::SessionOptions session;
  session.device = config.device;
  if (!config.station.empty()) session.station = config.station;
  session.yes = yes;
  board::require_pulse_permission("train", session);
}

// --record FILE: one board session (no --repeat) of a run with a layer on a board.
void apply_record_option(const TrainArguments& args, TrainConfig& config) {
  if (args.record.empty()) return;
  if (args.repeat > 1) {
    throw std::invalid_argument(
        "--record with --repeat: one recording holds one board session; record one "
        "repetition (--seed S without --repeat) instead");
  }
  if (config.placement.find("board") == std::string::npos) {
    throw std::invalid_argument("--record " + args.record +
                                ": no layer is on a board (--placement " + config.placement +
                                "), so there are no frames to record");
  }
  config.record = args.record;
}

// Runs the training (or its repetitions) into `out` and prints the results. Stopped or aborted
// by Ctrl-C (or the live view's stop action), it says how to continue and exits with
// kInterruptedExitStatus. `live`: the live view the run is published to, or null.
void run_and_print(const TrainConfig& config, const fs::path& out, bool resume, int repeat,
                   live::LiveSession* live) {
  InterruptHandler interrupts;
  learning::RunControl control;
  control.stop_after_epoch = &InterruptHandler::stop_requested();
  control.abort_now = &InterruptHandler::abort_requested();
  // How to continue after Ctrl-C: a single run resumes its directory; repetitions rerun the
  // same command (finished seeds are kept, the interrupted one resumes).
  const std::string continue_with = repeat > 1
                                        ? "the same command again (same --out " + out.string() + ")"
                                        : "metaplast train --resume " + out.string();
  nlohmann::json summary;
  try {
    summary = repeat > 1 ? hil::run_repetitions(config, out, repeat, control)
                         : hil::run_training(config, out, resume, control, {},
                                             live != nullptr ? &live->feed() : nullptr);
  } catch (const learning::RunAborted& e) {
    // The stores (and the board, back in its safe state) are already closed.
    std::fprintf(stderr, "metaplast: %s\ncontinue with:\n  %s\n", e.what(), continue_with.c_str());
    std::fflush(stdout);
    end_live_view(live, live::RunState::interrupted, kInterruptedExitStatus,
                  std::string(e.what()) + "; continue with: " + continue_with);
    std::exit(kInterruptedExitStatus);
  }
  if (summary.value("status", "finished") == "stopped") {
    const auto& next = summary["next"];
    std::fprintf(stderr,
                 "metaplast: stopped (Ctrl-C) after a checkpoint; next: %s epoch %d\ncontinue "
                 "with:\n  %s\n",
                 next.value("task", "?").c_str(), next.value("epoch", 0), continue_with.c_str());
    std::fflush(stdout);
    end_live_view(live, live::RunState::stopped, kInterruptedExitStatus,
                  "stopped after a checkpoint; next: " + next.value("task", "?") + " epoch " +
                      std::to_string(next.value("epoch", 0)) + "; continue with: " + continue_with);
    std::exit(kInterruptedExitStatus);
  }
  print_results(summary, out, repeat > 1);
  end_live_view(live, live::RunState::finished, 0, "results in " + out.string());
}

// The live view of a training (--live), or null: checked before anything runs.
std::unique_ptr<live::LiveSession> train_live_view(const TrainArguments& args,
                                                   const TrainJob& job) {
  const live::LiveOptions options = live_options(args.live);
  if (!options.enabled()) return nullptr;
  if (job.repeat > 1) {
    throw std::invalid_argument(
        "--live with --repeat: a live view shows one run; watch one repetition (--seed S "
        "without --repeat)");
  }
  const nlohmann::json run = {{"command", "train"},
                              {"out_dir", job.out.string()},
                              {"tasks", job.config.tasks},
                              {"epochs", job.config.epochs},
                              {"placement", job.config.placement},
                              {"device", job.config.device}};
  return start_live_view(options, run, job.out / kStopRequestsFile);
}

// The `train` options on `train` (a subcommand or an app of its own), filled into `args`.
void add_train_options(CLI::App* train, TrainArguments& args) {
  args.config.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  add_network_options(train, args);
  add_training_options(train, args);
  add_device_options(train, args);
  add_session_options(train, args);
}

// The job `train`'s parsed options describe, with the command's checks.
TrainJob train_job(const CLI::App& train, const TrainArguments& args) {
  TrainJob job;
  job.resume = !args.resume_dir.empty();
  job.config = job.resume ? resumed_config(train, args) : new_run_config(train, args);
  job.out = job.resume             ? fs::path(args.resume_dir)
            : args.out_dir.empty() ? fs::path(timestamped_run_dir())
                                   : fs::path(args.out_dir);
  apply_record_option(args, job.config);
  if (!args.settings.empty() && job.config.placement.find("board") == std::string::npos) {
    throw std::invalid_argument("board settings (" + args.settings.begin()->first +
                                ", ...) are given but no layer is on a board (--placement " +
                                job.config.placement + "): put a layer on the board or drop them");
  }
  require_board_permission(job.config, args.yes);
  if (args.repeat > 1 && job.resume) {
    throw std::invalid_argument(
        "--repeat with --resume: run the same --repeat command with --out again instead; "
        "finished repetitions are kept, an unfinished one is resumed");
  }
  job.repeat = args.repeat;
  return job;
}

}  // namespace

void add_train_command(CLI::App& root) {
  auto args = std::make_shared<TrainArguments>();
  auto* train = root.add_subcommand(
      "train",
      "Train the metaplastic quantized network on tasks in sequence (default MNIST then "
      "Fashion-MNIST); writes config.json, metrics.csv, checkpoint.bin and summary.json");
  add_train_options(train, *args);
  train->callback([train, args] {
    const TrainJob job = train_job(*train, *args);
    const auto live = train_live_view(*args, job);
    try {
      run_and_print(job.config, job.out, job.resume, job.repeat, live.get());
    } catch (const std::exception& e) {
      end_live_view(live.get(), live::RunState::failed, 1, e.what());
      throw;
    }
  });
}

TrainJob parse_train_job(const std::vector<std::string>& arguments) {
  TrainArguments args;
  CLI::App train("metaplast train", "train");
  add_train_options(&train, args);
  parse_arguments(train, arguments);
  return train_job(train, args);
}

}  // namespace metaplast::cli
