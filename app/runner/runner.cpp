#include "app/runner/runner.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "app/bench/calibration_from_measurements.hpp"
#include "app/bench/cell_map.hpp"
#include "app/bench/endurance.hpp"
#include "app/bench/forming.hpp"
#include "app/bench/measurement.hpp"
#include "app/bench/read_disturb.hpp"
#include "app/bench/retention.hpp"
#include "app/bench/window.hpp"
#include "app/board/board_session.hpp"
#include "app/campaign/evaluate.hpp"
#include "app/campaign/run_record.hpp"
#include "app/campaign/units.hpp"
#include "app/hil/characterization_record.hpp"
#include "app/hil/characterization_steps.hpp"
#include "app/hil/characterize.hpp"
#include "app/hil/chip_registry.hpp"
#include "app/hil/training_run.hpp"
#include "app/learning/dataset.hpp"
#include "app/learning/trainer.hpp"
#include "app/report/report.hpp"
#include "app/util/process.hpp"
#include "app/util/progress.hpp"
#include "common/atomic_file.hpp"
#include "common/enum_names.hpp"
#include "common/json_file.hpp"
#include "instruments/array_board.hpp"
#include "instruments/station_limits.hpp"

namespace metaplast::campaign {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// Thrown out of a step when the second Ctrl-C asks to abort at once.
class StepAborted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

bool is_set(const std::atomic<bool>* flag) { return flag != nullptr && flag->load(); }

json board_identity(const instruments::BoardInfo& info) {
  return {{"model", info.model},
          {"serial", info.serial},
          {"firmware_version", info.firmware_version},
          {"protocol_version", info.protocol_version},
          {"rows", info.rows},
          {"cols", info.cols},
          {"adc_bits", info.adc_bits},
          {"dac_bits", info.dac_bits},
          {"boot_id", info.boot_id},
          {"capability_flags", info.capability_flags}};
}

std::vector<PlannedStep> plan_from_json(const json& plan) {
  std::vector<PlannedStep> steps;
  for (const auto& j : plan.at("steps")) {
    PlannedStep s;
    s.id = j.at("id");
    s.type = j.at("type");
    s.top = j.at("top");
    s.json_path = j.at("json_path");
    s.options = j.at("options");
    s.parameters = j.at("parameters");
    for (const auto& l : j.at("links")) {
      s.links.push_back(
          {l.at("option"), l.at("reference"), l.at("from"), l.at("output"), l.at("path")});
    }
    const json& e = j.at("estimate");
    s.host_seconds = e.at("host_seconds");
    s.device_seconds = e.at("device_seconds");
    s.device_operations_known = !e.at("device_operations").is_null();
    if (s.device_operations_known) s.device_operations = e.at("device_operations");
    // Plans written before the board's time was estimated have neither.
    s.board_store = e.value("board_store", false);
    if (e.contains("link_seconds")) {
      s.link_seconds_uart = e["link_seconds"].value("uart", 0.0);
      s.link_seconds_tcp = e["link_seconds"].value("tcp", 0.0);
    }
    steps.push_back(std::move(s));
  }
  return steps;
}

class Executor {
 public:
  Executor(RunRecord& record, std::vector<PlannedStep> steps, instruments::Station station,
           const RunOptions& options)
      : record_(record), steps_(std::move(steps)), station_(std::move(station)), options_(options) {
    std::vector<spdlog::sink_ptr> sinks;
    sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(
        (record_.dir() / kLogFile).string(), false));
    if (options.log_to_stderr) {
      sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    }
    log_ = std::make_shared<spdlog::logger>("campaign", sinks.begin(), sinks.end());
    log_->flush_on(spdlog::level::info);
    previous_logger_ = spdlog::default_logger();
    spdlog::set_default_logger(log_);  // the trainer's lines go to the run's log too
    for (const auto& s : steps_) total_weight_ += weight(s);
  }
  ~Executor() {
    log_->flush();
    spdlog::set_default_logger(previous_logger_);
  }

  // Sequential: every step not done, in plan order, in this process (campaign run / resume).
  RunOutcome run() {
    start_session_clock();
    for (std::size_t i = 0; i < steps_.size(); ++i) {
      if (record_.status_of(steps_[i].id) == kDone) continue;
      if (is_set(options_.interrupts.stop) || is_set(options_.interrupts.abort)) {
        return end(
            stopped(RunStatus::interrupted, "stopped before step " + steps_[i].id + " (Ctrl-C)"));
      }
      const auto lock = record_.lock_step(i);
      if (!lock) return end(failed(steps_[i].id, another_process(i)));
      RunOutcome outcome = run_step(i);
      if (outcome.status != RunStatus::finished) return end(outcome);
    }
    return end(all_done());
  }

  // The given units (plan indices), in order, in this process, without a session of their own
  // (campaign run-unit: a --jobs child or a Slurm task). A unit already done is skipped; a unit
  // whose predecessors are not done, or that another process runs, fails.
  RunOutcome run_units(const std::vector<std::size_t>& indices) {
    start_session_clock();
    const auto units = plan_units(steps_);
    for (const std::size_t i : indices) {
      record_.refresh();
      const PlannedStep& step = steps_[i];
      if (record_.status_of(step.id) == kDone) {
        log_->info("{}: already done", step.id);
        continue;
      }
      if (is_set(options_.interrupts.stop) || is_set(options_.interrupts.abort)) {
        return stopped(RunStatus::interrupted, "stopped before step " + step.id + " (Ctrl-C)");
      }
      for (const std::size_t j : units[i].waits_on) {
        const std::string status = record_.status_of(steps_[j].id);
        if (status != kDone) {
          return failed(step.id, "it waits on step " + steps_[j].id + ", which is " + status +
                                     " (run the units in stage order)");
        }
      }
      const auto lock = record_.lock_step(i);
      if (!lock) return failed(step.id, another_process(i));
      RunOutcome outcome = run_step(i);
      if (outcome.status != RunStatus::finished) return outcome;
    }
    RunOutcome outcome;
    outcome.dir = record_.dir();
    outcome.message = std::to_string(indices.size()) + " unit(s) done";
    return outcome;
  }

  // Up to `jobs` units at once, each a child process `metaplast campaign run-unit` (campaign
  // run/resume --jobs N): a unit starts when every unit it waits on is done; the board lane's
  // units one at a time. Ctrl-C is passed on to the children (the first: finish the epoch and
  // checkpoint; the second: stop now); no unit starts after a Ctrl-C or a failure.
  RunOutcome run_parallel(std::size_t jobs) {
    start_session_clock();
    const auto units = plan_units(steps_);
    std::map<std::size_t, util::BackgroundProcess> children;
    std::vector<std::string> failures;
    int signals_sent = 0;
    for (;;) {
      record_.refresh();
      reap_children(children, failures);
      const int wanted = is_set(options_.interrupts.abort)  ? 2
                         : is_set(options_.interrupts.stop) ? 1
                                                            : 0;
      for (; signals_sent < wanted; ++signals_sent) {
        for (auto& [index, child] : children) child.send_signal(SIGINT);
      }
      if (wanted == 0 && failures.empty()) start_ready(units, jobs, children);
      if (children.empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    record_.refresh();
    if (!failures.empty()) {
      RunOutcome outcome;
      outcome.dir = record_.dir();
      outcome.status = RunStatus::failed;
      for (const auto& f : failures) outcome.message += (outcome.message.empty() ? "" : "; ") + f;
      log_->error("{}", outcome.message);
      return end(outcome);
    }
    if (signals_sent > 0) {
      return end(stopped(signals_sent > 1 ? RunStatus::aborted : RunStatus::interrupted,
                         "stopped (Ctrl-C); finished units are kept, interrupted train steps "
                         "continue from their last epoch checkpoint"));
    }
    for (const auto& s : steps_) {
      if (record_.status_of(s.id) != kDone) {
        return end(failed(s.id, "it could not start (a unit it waits on is not done)"));
      }
    }
    rewrite_report();
    return end(all_done());
  }

  // A report step that ran in another process is drawn again here, so that its page gets the
  // run's final status when the session ends.
  void rewrite_report() {
    for (const auto& s : steps_) {
      if (s.type == "report" && !report_page_) report_page_ = report::write_report(record_.dir());
    }
  }

  // Every step is done (in other processes): the session ends finished and the report is drawn
  // (campaign merge).
  RunOutcome merge() {
    start_session_clock();
    const fs::path jobs = record_.dir() / "slurm" / "jobs.json";
    if (fs::exists(jobs)) record_.set("slurm", read_json(jobs));
    report_page_ = report::write_report(record_.dir());
    log_->info("merged: report {}", report_page_->index.string());
    return end(all_done());
  }

  // Ends this session in record.json with `outcome` (a report written in this session gets the
  // final status).
  RunOutcome end(RunOutcome outcome) {
    if (outcome.status == RunStatus::finished) {
      log_->info("campaign finished: {}", record_.dir().string());
    }
    end_session(outcome.status == RunStatus::finished ? "finished" : to_string(outcome.status),
                outcome.exit_code(), outcome.status == RunStatus::finished ? "" : outcome.message);
    return outcome;
  }

 private:
  RunRecord& record_;
  std::vector<PlannedStep> steps_;
  instruments::Station station_;
  RunOptions options_;
  std::shared_ptr<spdlog::logger> log_, previous_logger_;
  double total_weight_ = 0;
  std::size_t current_ = 0;
  Clock::time_point session_start_;
  double session_start_progress_ = 0;
  std::optional<report::ReportPage> report_page_;  // a report step ran in this session

  void start_session_clock() {
    session_start_ = Clock::now();
    session_start_progress_ = done_progress();
  }

  RunOutcome all_done() const {
    RunOutcome outcome;
    outcome.dir = record_.dir();
    outcome.message = "all " + std::to_string(steps_.size()) + " steps done";
    return outcome;
  }

  std::string another_process(std::size_t i) const {
    return "another process is running it (its lock " + record_.step_lock_file(i).string() +
           " is held): wait for that process, or stop it first";
  }

  RunOutcome failed(const std::string& step_id, const std::string& message) {
    RunOutcome outcome;
    outcome.dir = record_.dir();
    outcome.status = RunStatus::failed;
    outcome.message = "step " + step_id + " failed: " + message;
    log_->error("{}", outcome.message);
    return outcome;
  }

  // Runs step i (not done): finished, or why it stopped (recorded in state.json).
  RunOutcome run_step(std::size_t i) {
    const PlannedStep& step = steps_[i];
    const std::string status = record_.status_of(step.id);
    log_->info("[{}/{}] {} ({}){}", i + 1, steps_.size(), step.id, step.type,
               status == kRunning  ? ": continuing after an interruption"
               : status == kFailed ? ": retrying after a failure"
                                   : "");
    record_.step_started(step.id);
    current_ = i;
    try {
      json result;
      bool stopped_early = false;
      if (step.type == "train") {
        result = run_train(step, status != kPending);
        stopped_early = result.value("status", "finished") == "stopped";
      } else if (step.type == "characterize") {
        result = run_characterize(step);
      } else if (is_measurement_step(step.type)) {
        result = run_measurement_step(step);
        if (result.value("status", "") == "interrupted") {
          return stopped(RunStatus::interrupted, "stopped in step " + step.id + " (Ctrl-C): " +
                                                     result.value("resume_hint", std::string()) +
                                                     " (`metaplast campaign resume` continues it)");
        }
      } else if (step.type == "evaluate") {
        result = run_evaluate(step);
      } else if (step.type == "calibrate") {
        result = run_calibrate(step);
      } else if (step.type == "report") {
        result = run_report(step);
      }
      if (stopped_early) {
        return stopped(RunStatus::interrupted, "stopped in step " + step.id +
                                                   " after the checkpoint of " +
                                                   result["next"].dump() +
                                                   " was due (Ctrl-C); its epochs so far "
                                                   "are kept");
      }
      record_.step_finished(step.id, result);
      log_->info("[{}/{}] {} done{}", i + 1, steps_.size(), step.id, eta_text());
    } catch (const learning::RunAborted& e) {
      return stopped(RunStatus::aborted,
                     "aborted in step " + step.id + " (second Ctrl-C): " + e.what());
    } catch (const StepAborted& e) {
      return stopped(RunStatus::aborted,
                     "aborted in step " + step.id + " (second Ctrl-C): " + e.what());
    } catch (const std::exception& e) {
      record_.step_failed(step.id, e.what());
      return failed(step.id, e.what());
    }
    RunOutcome outcome;
    outcome.dir = record_.dir();
    return outcome;
  }

  // Where the child that runs unit i writes its output (--jobs).
  fs::path unit_log(std::size_t i) const {
    return record_.dir() / "logs" / ("unit-" + std::to_string(i) + ".log");
  }

  // Starts the units that can start, up to `jobs` children in all.
  void start_ready(const std::vector<Unit>& units, std::size_t jobs,
                   std::map<std::size_t, util::BackgroundProcess>& children) {
    for (const auto& u : units) {
      if (children.size() >= jobs) return;
      if (children.count(u.index) || record_.status_of(steps_[u.index].id) == kDone) continue;
      const bool ready = std::all_of(u.waits_on.begin(), u.waits_on.end(), [&](std::size_t j) {
        return record_.status_of(steps_[j].id) == kDone;
      });
      if (!ready) continue;
      std::vector<std::string> argv = {
          options_.executable.string(), "campaign", "run-unit", record_.dir().string(),
          std::to_string(u.index),      "--quiet"};
      if (options_.record_frames) argv.push_back("--record");
      if (options_.yes) argv.push_back("--yes");
      if (options_.allow_settings_change) argv.push_back("--allow-settings-change");
      for (auto& a : instruments::setting_arguments(options_.board_settings)) argv.push_back(a);
      const fs::path log = unit_log(u.index);
      fs::create_directories(log.parent_path());
      children.emplace(u.index, util::BackgroundProcess::start(argv, log));
      log_->info("[{}/{}] {} ({}) started in process {} (output: {})", u.index + 1, steps_.size(),
                 steps_[u.index].id, steps_[u.index].type, children.at(u.index).pid(),
                 log.string());
    }
  }

  // Collects the children that ended; a unit that did not end done is a failure unless it
  // stopped for a Ctrl-C.
  void reap_children(std::map<std::size_t, util::BackgroundProcess>& children,
                     std::vector<std::string>& failures) {
    for (auto it = children.begin(); it != children.end();) {
      const auto result = it->second.poll();
      if (!result) {
        ++it;
        continue;
      }
      const PlannedStep& step = steps_[it->first];
      const std::string status = record_.status_of(step.id);
      if (status == kDone) {
        current_ = it->first;
        log_->info("[{}/{}] {} done{}", it->first + 1, steps_.size(), step.id, eta_text());
      } else if (result->exit_code != 130) {
        const std::string error = record_.step(step.id).value("error", std::string());
        failures.push_back("step " + step.id + " failed: " +
                           (error.empty()
                                ? result->describe() + " (see " + unit_log(it->first).string() + ")"
                                : error));
        log_->error("{}", failures.back());
      }
      it = children.erase(it);
    }
  }

  // Ends the session in record.json; a report written in this session gets the final status
  // (it was written while the campaign was still "running").
  void end_session(const std::string& status, int exit_code, const std::string& message) {
    record_.end_session(status, exit_code, message);
    if (!report_page_) return;
    try {
      report::write_report_index(record_.dir(), *report_page_);
    } catch (const std::exception& e) {
      log_->warn("report page not updated with the final status: {}", e.what());
    }
  }

  static double weight(const PlannedStep& s) {
    return 1.0 + s.host_seconds + s.device_seconds;  // 1 s floor: every step counts
  }

  double done_progress() const {
    double done = 0;
    for (const auto& s : steps_) {
      if (record_.status_of(s.id) == kDone) done += weight(s);
    }
    return done / total_weight_;
  }

  // " | campaign 42% ETA 3 min 10 s", from this session's pace.
  std::string eta_text(double within_current = 0) const {
    const double progress =
        done_progress() + within_current * weight(steps_[current_]) / total_weight_;
    const double elapsed = std::chrono::duration<double>(Clock::now() - session_start_).count();
    const double gained = progress - session_start_progress_;
    char buf[128];
    if (gained <= 1e-9) {
      std::snprintf(buf, sizeof buf, " | campaign %.0f%%", 100 * progress);
    } else {
      std::snprintf(buf, sizeof buf, " | campaign %.0f%% ETA %s", 100 * progress,
                    util::format_duration(elapsed / gained * (1 - progress)).c_str());
    }
    return buf;
  }

  RunOutcome stopped(RunStatus status, const std::string& message) {
    RunOutcome outcome;
    outcome.dir = record_.dir();
    outcome.status = status;
    outcome.message = message;
    log_->warn("{}; continue with: metaplast campaign resume {}", message, record_.dir().string());
    return outcome;
  }

  json run_train(const PlannedStep& step, bool maybe_started) {
    const fs::path dir = record_.dir() / step.dir();
    json options = step.options;
    const json trainer_keys = learning::TrainConfig{}.to_json();
    for (const auto& key : kHardwareTrainOptions) {
      if (trainer_keys.contains(key)) continue;
      if (options.value(key, "") != "") {
        throw std::runtime_error("option \"" + key + "\" (" + step.json_path + "/" + key +
                                 ") is not supported by this build's trainer (issue 4)");
      }
      options.erase(key);
    }
    options = with_linked_paths(step, options);
    // The command line's board settings over the step's (docs/bench.md).
    if (!options_.board_settings.empty()) {
      json settings = options.value("board-settings", json::object());
      settings.update(instruments::to_json(options_.board_settings));
      options["board-settings"] = settings;
    }
    // Weights on a board: the station's board and chip unless the step names them.
    const bool on_board =
        options.value("placement", std::string()).find("board") != std::string::npos;
    if (on_board && options.contains("device") && options["device"] == "") {
      if (const auto* board = station_.array_board()) options["device"] = board->address;
    }
    if (options.contains("chip") && options["chip"] == "" && !station_.chip.empty()) {
      options["chip"] = station_.chip;
    }
    if (options.contains("chips-dir") && options["chips-dir"] == "") {
      options["chips-dir"] = station_.chips_dir;
    }
    if (options["data"] == "") options["data"] = learning::default_data_dir().string();
    learning::TrainConfig config = learning::TrainConfig::from_json(options);
    config.allow_settings_change = options_.allow_settings_change;
    // The station's limits and board settings hold on the board layers too: the file given to
    // this command, else the run's station.json.
    if (on_board) {
      config.station =
          options_.station_file ? *options_.station_file : record_.dir() / kStationFile;
    }

    bool resume = false;
    if (maybe_started && fs::exists(dir / learning::kSummaryFile)) {
      // Killed after the trainer finished but before state.json said so.
      const json summary = read_json(dir / learning::kSummaryFile);
      if (summary.value("status", "finished") == "finished") return summary_result(summary);
    }
    if (fs::exists(dir / learning::kCheckpointFile)) {
      resume = true;
      log_->info("{}: continuing from its last epoch checkpoint", step.id);
    } else if (fs::exists(dir)) {
      fs::remove_all(dir);  // killed before its first checkpoint: nothing worth keeping
    }
    if (options_.record_frames && config.placement.find("board") != std::string::npos) {
      config.record = frames_file(dir);  // created when the trainer opens the board
    }
    learning::RunControl control;
    control.stop_after_epoch = options_.interrupts.stop;
    control.abort_now = options_.interrupts.abort;
    const double epochs_total =
        static_cast<double>(config.tasks.size()) * static_cast<double>(config.epochs);
    control.on_epoch_end = [&](const learning::EpochReport& r) {
      std::string accuracies;
      for (const auto& e : r.evaluations) {
        if (e.split != "test") continue;
        char buf[64];
        std::snprintf(buf, sizeof buf, " %s %.2f%%", e.task.c_str(), 100 * e.accuracy);
        accuracies += buf;
      }
      const double within =
          (static_cast<double>(r.task_index) * r.epochs + r.epoch) / std::max(1.0, epochs_total);
      log_->info("{}: {} epoch {}/{}:{}{}", step.id, r.task, r.epoch, r.epochs, accuracies,
                 eta_text(within));
    };
    const json summary = hil::run_training(config, dir, resume, control);
    if (summary.value("status", "finished") == "stopped") return summary;
    return summary_result(summary);
  }

  // This session's frame recording of a step: <dir>/frames-<session>.jsonl.
  fs::path frames_file(const fs::path& dir) const {
    const auto sessions = record_.record().value("sessions", json::array()).size();
    return dir / ("frames-" + std::to_string(std::max<std::size_t>(1, sessions)) + ".jsonl");
  }

  static json summary_result(const json& summary) {
    json result = {{"final", summary.value("final", json::object())}};
    if (summary.contains("writes")) result["writes"] = summary["writes"];
    // The board settings in force (record.json, docs/run-records.md).
    const json store = summary.value("config", json::object()).value("store", json::object());
    if (store.contains("board_settings")) result["board_settings"] = store["board_settings"];
    return result;
  }

  // A retention, read-disturb or endurance step through the measurement harness (app/bench/): the
  // step's folder holds its files; a folder with an unfinished measurement is resumed (same options
  // and settings, else the harness refuses), one without is started afresh.
  json run_measurement_step(const PlannedStep& step) {
    const fs::path dir = record_.dir() / step.dir();
    json o = with_linked_paths(step, step.options);
    if (step.type == "cell-map") {
      if (o["chips-dir"] == "") o["chips-dir"] = station_.chips_dir;
      if (o["from"] != "") return run_saved_cell_map(step, o, dir);
    }
    bench::HarnessOptions h;
    h.session.device = characterize_board_address(o);
    h.session.station =
        options_.station_file ? *options_.station_file : record_.dir() / kStationFile;
    if (!fs::exists(*h.session.station)) h.session.station.reset();
    h.session.yes = options_.yes;
    h.session.settings = options_.board_settings;
    h.campaign_values =
        instruments::setting_values_from_json(o["board-settings"], step.id, "/board-settings");
    h.chip = o["chip"].get<std::string>();
    h.stop_requested = [this] {
      return is_set(options_.interrupts.stop) || is_set(options_.interrupts.abort);
    };
    h.log = [this, &step](const std::string& line) { log_->info("{}: {}", step.id, line); };
    h.progress_line = options_.log_to_stderr;
    const fs::path progress = dir / bench::kProgressFile;
    if (fs::exists(progress) && read_json(progress).value("status", std::string()) != "completed") {
      h.resume = dir;
    } else {
      if (fs::exists(dir)) fs::remove_all(dir);
      h.out = dir;
    }
    std::unique_ptr<bench::Measurement> m;
    const std::string base = o.value("base-calibration", std::string());
    for (const char* key : {"device", "chip", "board-settings", "base-calibration"}) o.erase(key);
    if (step.type == "retention") {
      m = std::make_unique<bench::RetentionMeasurement>(bench::retention_options_from_json(o));
    } else if (step.type == "forming") {
      devices::FormingModel model;
      if (!base.empty()) model = devices::load_calibration(base).forming;
      m = std::make_unique<bench::FormingMeasurement>(bench::forming_options_from_json(o), model);
    } else if (step.type == "cell-map") {
      m = std::make_unique<bench::CellMapMeasurement>(bench::cell_map_options_from_json(o));
    } else if (step.type == "endurance") {
      m = std::make_unique<bench::EnduranceMeasurement>(bench::endurance_options_from_json(o));
    } else if (step.type == "window") {
      m = std::make_unique<bench::WindowMeasurement>(bench::window_options_from_json(o));
    } else {
      devices::ReadDisturbModel model;
      if (!base.empty()) model = devices::load_calibration(base).read_disturb;
      m = std::make_unique<bench::ReadDisturbMeasurement>(bench::read_disturb_options_from_json(o),
                                                          model);
    }
    const auto outcome = bench::run_measurement(*m, h);
    if (!outcome.plot_error.empty()) log_->warn("{}: no plot: {}", step.id, outcome.plot_error);
    record_.add_board(step.id, board_identity(outcome.record.board), outcome.record.chip_id,
                      instruments::settings_to_json(outcome.record.settings));
    json result = outcome.result;
    result["status"] = outcome.record.status;
    result["chip"] = outcome.record.chip_id;
    if (outcome.status == bench::MeasurementStatus::interrupted) {
      result["resume_hint"] = "the measurement stopped after a batch, its files are written";
    }
    return result;
  }

  // A cell-map step with "from": the map of a saved read, no board (bench::map_saved_read); the
  // chip is the step's "chip", else the one the file names (not the station's: the file may be
  // of another chip).
  json run_saved_cell_map(const PlannedStep& step, json o, const fs::path& dir) {
    if (fs::exists(dir)) fs::remove_all(dir);
    const std::string chip = o["chip"].get<std::string>();
    for (const char* key : {"device", "chip", "board-settings"}) o.erase(key);
    const auto outcome = bench::map_saved_read(
        bench::cell_map_options_from_json(o), chip, dir,
        [this, &step](const std::string& line) { log_->info("{}: {}", step.id, line); });
    if (!outcome.plot_error.empty()) log_->warn("{}: no plot: {}", step.id, outcome.plot_error);
    json result = outcome.result;
    result["status"] = outcome.record.status;
    result["chip"] = outcome.record.chip_id;
    result["source"] = outcome.record.source;
    return result;
  }

  // A characterize step's board: its "device", else the station's array-board.
  std::string characterize_board_address(const json& o) const {
    std::string device = o["device"].get<std::string>();
    if (device.empty()) {
      const auto* board = station_.array_board();
      if (!board) {
        throw std::invalid_argument(
            "no board address: the step has no \"device\" and the station has no "
            "\"array-board\" instrument (give --station FILE)");
      }
      device = board->address;
    }
    return device;
  }

  static hil::CharacterizeOptions characterize_options(const json& o) {
    hil::CharacterizeOptions options;
    options.cells = o["cells"];
    options.cycles = o["cycles"];
    options.read_repeats = o["read-repeats"];
    options.read_cells = o["read-cells"];
    options.seed = o["seed"];
    options.formed_threshold_us = o["formed-threshold-us"];
    return options;
  }

  // The campaign's progress and log lines: a terminal gets a progress line; a log one line every
  // 30 s. The second Ctrl-C stops the step between two batches. Returns whether the progress
  // line is on a terminal.
  bool show_characterize_progress(const PlannedStep& step, hil::CharacterizeOptions& options) {
    auto progress_line = std::make_shared<util::ProgressLine>();
    const bool tty = options_.log_to_stderr && progress_line->enabled();
    const auto* abort = options_.interrupts.abort;
    auto last_log = std::make_shared<double>(0);
    options.progress = [this, &step, progress_line, abort, tty,
                        last_log](const hil::CampaignProgress& p) {
      if (is_set(abort)) throw StepAborted("stopped between two characterisation batches");
      const double elapsed = progress_line->elapsed_seconds();
      const double fraction =
          p.steps_total ? static_cast<double>(p.steps_done) / p.steps_total : 1.0;
      const double eta = util::seconds_left(elapsed, fraction);
      if (tty) {
        char text[160];
        std::snprintf(text, sizeof text, "  %s: level %d, %zu/%zu (%3.0f%%) ETA %s",
                      step.id.c_str(), p.level, p.steps_done, p.steps_total, 100 * fraction,
                      util::format_duration(eta).c_str());
        progress_line->show(text);
      } else if (elapsed - *last_log >= 30 || p.steps_done == p.steps_total) {
        *last_log = elapsed;
        log_->info("{}: level {}, {}/{} ({:.0f}%) ETA {}{}", step.id, p.level, p.steps_done,
                   p.steps_total, 100 * fraction, util::format_duration(eta), eta_text(fraction));
      }
    };
    options.log = [this, &step, progress_line, tty](const std::string& text) {
      if (tty) progress_line->clear();
      log_->info("{}: {}", step.id, text);
    };
    return tty;
  }

  // The chip record, kept as train steps keep it (ChipRegistry::for_run): the step's
  // "chips-dir", else the station's "chips_dir", else none for the in-process simulated board,
  // else the default registry.
  std::optional<hil::ChipRegistry> characterize_registry(const json& o,
                                                         const std::string& device) const {
    std::string chips_dir = o["chips-dir"].get<std::string>();
    if (chips_dir.empty()) chips_dir = station_.chips_dir;
    const auto dir = hil::ChipRegistry::for_run(chips_dir, board::is_sim_address(device));
    if (dir.empty()) return std::nullopt;
    return hil::ChipRegistry(dir);
  }

  json run_characterize(const PlannedStep& step) {
    const fs::path dir = record_.dir() / step.dir();
    if (fs::exists(dir)) fs::remove_all(dir);  // an interrupted campaign starts again
    fs::create_directories(dir);
    const json o = with_linked_paths(step, step.options);
    const std::string device = characterize_board_address(o);
    hil::CharacterizeOptions options = characterize_options(o);
    const bool tty = show_characterize_progress(step, options);
    // The station's board settings, then the step's (docs/bench.md), within the station limits
    // before the board is opened.
    auto settings = instruments::with_values({}, station_.board_settings);
    settings = instruments::with_values(
        settings, instruments::setting_values_from_json(o.value("board-settings", json::object()),
                                                        step.id, "/board-settings"));
    settings = instruments::with_values(settings, options_.board_settings);
    instruments::check_station_limits(settings, station_.limits);

    board::register_sim_scheme();
    instruments::ArrayBoard board(device, station_.limits);  // safe state on every exit path
    if (options_.record_frames) {
      board.set_recorder(std::make_shared<instruments::FrameRecorder>(frames_file(dir), device));
    }
    const auto& info = board.open();
    const std::string chip =
        hil::chip_id_for_board(o["chip"].get<std::string>(), station_.chip, info.serial);
    record_.add_board(step.id, board_identity(info), chip, instruments::settings_to_json(settings));
    std::optional<hil::ChipRegistry> registry = characterize_registry(o, device);
    if (registry) hil::exclude_known_bad_cells(*registry, chip, options);
    log_->info("{}: board {} {} (firmware {}, boot {:08x}) at {}, chip {}", step.id, info.model,
               info.serial, info.firmware_version, info.boot_id, device, chip);
    const auto data = hil::measure_characterization(board, settings, options);
    if (tty) std::fprintf(stderr, "\n");

    devices::Calibration base = devices::Calibration::defaults();
    if (o["base-calibration"] != "")
      base = devices::load_calibration(o["base-calibration"].get<std::string>());
    const auto result = hil::fit_chip_characterization(data, info, chip, base, o["outlier-z"]);
    const std::string plot_error = hil::write_characterization_files(data, result, dir);
    if (!plot_error.empty()) log_->warn("{}: no CDF plot: {}", step.id, plot_error);
    if (registry) {
      const auto file = hil::record_characterization(*registry, chip, info, data, result,
                                                     dir / "calibration.json");
      log_->info("{}: chip record {}", step.id, file.string());
    }
    log_->info("{}: calibration written; {} cells measured, {} bad, {} unformed", step.id,
               data.cells.size(), result.bad_cells.size(), data.scan.unformed.size());
    return {{"calibration", (step.dir() / "calibration.json").string()},
            {"cells", data.cells.size()},
            {"bad_cells", result.bad_cells.size()},
            {"unformed_cells", data.scan.unformed.size()},
            {"chip", chip}};
  }

  // The evaluate group of a train leaf: its swept values ("mstar=3"); a repeat, whose only
  // parameter is the seed, is named by its top-level step and m* ("fig5a (mstar=3)").
  static std::string group_of(const PlannedStep& s) {
    const std::string swept = parameters_label(s.parameters);
    if (!swept.empty()) return swept;
    if (s.options.contains("mstar")) {
      return s.top + " (mstar=" + common::option_value_text(s.options["mstar"]) + ")";
    }
    return s.top;
  }

  // A step's options with every "@step" link made the absolute path of that step's output in this
  // run folder (plan.json keeps them relative to the folder, which may move).
  json with_linked_paths(const PlannedStep& step, json options) const {
    for (const auto& link : step.links) {
      if (link.option == "runs" || link.option == "from") continue;  // lists, read by their steps
      options[link.option] = fs::absolute(record_.dir() / link.path).lexically_normal().string();
    }
    return options;
  }

  // A calibrate step: bench::fit_calibration over the measurement steps' folders.
  json run_calibrate(const PlannedStep& step) {
    const json o = with_linked_paths(step, step.options);
    bench::CalibrationFitOptions options;
    if (o["base"] != "") options.base = fs::path(o["base"].get<std::string>());
    for (const auto& f : o["from"])
      options.measurements.push_back(record_.dir() / f.get<std::string>());
    options.include_unidentifiable = o["include-unidentifiable"].get<bool>();
    const auto fitted = bench::fit_calibration(options);
    const fs::path dir = record_.dir() / step.dir();
    fs::create_directories(dir);
    common::write_file_atomically(dir / "calibration.json", fitted.calibration.dump(2) + "\n");
    std::istringstream table(bench::fitted_calibration_table(fitted));
    for (std::string line; std::getline(table, line);) log_->info("{}: {}", step.id, line);
    return {{"calibration", (step.dir() / "calibration.json").string()},
            {"chip", fitted.chip_id},
            {"fields_measured", fitted.applied.size()},
            {"fields_not_identifiable", fitted.not_applied.size()},
            {"fields_not_measured", fitted.not_measured.size()}};
  }

  json run_evaluate(const PlannedStep& step) {
    std::vector<EvaluatedRun> runs;
    for (const auto& id : step.options["runs"]) {
      for (const auto& s : steps_) {
        if (s.id == id) runs.push_back({s.id, record_.dir() / s.dir(), s.parameters, group_of(s)});
      }
    }
    const json evaluation = evaluate_runs(runs, record_.dir() / step.dir());
    for (const auto& g : evaluation["groups"]) {
      log_->info("{}: {} ({} runs): mean {} std {}", step.id, g["name"].get<std::string>(),
                 g["runs"].get<std::size_t>(), g["final_mean"].dump(), g["final_std"].dump());
    }
    return {{"evaluation", (step.dir() / "evaluation.json").string()}};
  }

  json run_report(const PlannedStep& step) {
    const auto page = report::write_report(record_.dir());
    report_page_ = page;
    log_->info("{}: report {}", step.id, page.index.string());
    for (const auto& m : page.missing) log_->info("{}: no {}", step.id, m);
    return {{"report", fs::relative(page.index, record_.dir()).string()}};
  }
};

constexpr auto kRunStatusNames = common::enum_table<RunStatus>({
    {RunStatus::finished, "finished"},
    {RunStatus::interrupted, "interrupted"},
    {RunStatus::aborted, "aborted"},
    {RunStatus::failed, "failed"},
});

}  // namespace

const char* to_string(RunStatus status) { return common::enum_name(kRunStatusNames, status); }

int RunOutcome::exit_code() const {
  switch (status) {
    case RunStatus::finished:
      return 0;
    case RunStatus::interrupted:
    case RunStatus::aborted:
      return 130;
    case RunStatus::failed:
      return 1;
  }
  return 1;
}

std::vector<PlannedStep> unfinished_steps(const RunRecord& record,
                                          const std::vector<PlannedStep>& steps) {
  std::vector<PlannedStep> out;
  for (const auto& s : steps) {
    if (record.status_of(s.id) != kDone) out.push_back(s);
  }
  return out;
}

instruments::Station recorded_station(const fs::path& dir,
                                      const std::optional<fs::path>& station_file) {
  return station_file ? instruments::load_station(*station_file)
                      : instruments::station_from_json(read_json(dir / kStationFile),
                                                       (dir / kStationFile).string());
}

namespace {

RunOutcome execute(RunRecord& record, std::vector<PlannedStep> steps, instruments::Station station,
                   const RunOptions& options) {
  Executor executor(record, std::move(steps), std::move(station), options);
  return options.jobs > 1 ? executor.run_parallel(options.jobs) : executor.run();
}

}  // namespace

void require_pulse_permission(const std::vector<PlannedStep>& steps,
                              const instruments::Station& station, bool yes) {
  const auto permission = board::pulse_permission(yes, station);
  for (const auto& step : steps) {
    const std::string address = pulsed_board_address(step, station);
    if (address.empty()) continue;
    board::require_pulse_permission("campaign step \"" + step.id + "\" (" + step.type + ")",
                                    address, permission);
  }
}

void check_thread_budget(const std::vector<PlannedStep>& steps, const RunOptions& options) {
  if (options.jobs == 0) throw std::invalid_argument("--jobs must be at least 1");
  if (options.jobs == 1 || options.oversubscribe) return;
  const int threads = max_threads(plan_units(steps));
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  if (options.jobs * static_cast<std::size_t>(threads) > cores) {
    throw std::invalid_argument("--jobs " + std::to_string(options.jobs) + " with units of up to " +
                                std::to_string(threads) + " threads needs " +
                                std::to_string(options.jobs * static_cast<std::size_t>(threads)) +
                                " cores, and this machine has " + std::to_string(cores) +
                                ": lower --jobs, set \"threads\" lower in the campaign (a train "
                                "step's numbers are those of "
                                "its thread count), or pass --oversubscribe");
  }
}

RunOutcome run_campaign(const Campaign& campaign, const RunOptions& options) {
  check_thread_budget(campaign.steps, options);
  instruments::Station station;
  if (options.station_file) station = instruments::load_station(*options.station_file);
  require_pulse_permission(campaign.steps, station, options.yes);
  RunRecord record = RunRecord::create(options.out_dir, campaign, instruments::to_json(station),
                                       options.command_line);
  return execute(record, campaign.steps, station, options);
}

RunOutcome resume_campaign(const fs::path& dir, const RunOptions& options) {
  RunRecord record = RunRecord::open(dir);
  auto steps = plan_from_json(record.plan());
  check_thread_budget(steps, options);
  instruments::Station station = recorded_station(dir, options.station_file);
  require_pulse_permission(unfinished_steps(record, steps), station, options.yes);
  record.begin_session(options.command_line);
  return execute(record, std::move(steps), std::move(station), options);
}

RunOutcome run_units(const fs::path& dir, const std::vector<std::string>& units,
                     const RunOptions& options) {
  RunRecord record = RunRecord::open(dir);
  auto steps = plan_from_json(record.plan());
  std::vector<std::size_t> indices;
  std::vector<PlannedStep> to_run;
  for (const auto& name : units) {
    indices.push_back(find_unit(steps, name));
    to_run.push_back(steps[indices.back()]);
  }
  instruments::Station station = recorded_station(dir, options.station_file);
  require_pulse_permission(to_run, station, options.yes);
  Executor executor(record, std::move(steps), std::move(station), options);
  return executor.run_units(indices);
}

std::vector<PlannedStep> recorded_plan(const fs::path& dir) {
  return plan_from_json(RunRecord::open(dir).plan());
}

RunOutcome merge_run(const fs::path& dir, const RunOptions& options) {
  RunRecord record = RunRecord::open(dir);
  const auto steps = plan_from_json(record.plan());
  RunOutcome outcome;
  outcome.dir = dir;
  std::string missing;
  std::size_t not_done = 0;
  for (const auto& s : steps) {
    const std::string status = record.status_of(s.id);
    if (status == kDone) continue;
    if (++not_done <= 5) missing += (missing.empty() ? "" : ", ") + s.id + " (" + status + ")";
  }
  if (not_done > 0) {
    outcome.status = RunStatus::failed;
    outcome.message = std::to_string(not_done) + " of " + std::to_string(steps.size()) +
                      " steps are not done: " + missing + (not_done > 5 ? ", ..." : "") +
                      "; run them first (campaign resume DIR, or campaign resume DIR --slurm)";
    return outcome;
  }
  Executor executor(record, steps, recorded_station(dir, options.station_file), options);
  return executor.merge();
}

}  // namespace metaplast::campaign
