// `metaplast campaign check|run|resume`: scripted campaigns (docs/campaigns.md) with run
// records (docs/run-records.md), crash-safe resume and Ctrl-C handling.
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "app/campaign/campaign.hpp"
#include "app/campaign/run_record.hpp"
#include "app/campaign/units.hpp"
#include "app/cli/board_options.hpp"
#include "app/cli/commands.hpp"
#include "app/cli/interrupt.hpp"
#include "app/cli/live_options.hpp"
#include "app/cluster/slurm.hpp"
#include "app/hil/board_time_estimate.hpp"
#include "app/report/folder_view.hpp"
#include "app/runner/runner.hpp"
#include "instruments/array_board.hpp"
#include "instruments/board_settings.hpp"
#include "instruments/station_limits.hpp"

namespace metaplast::cli {

namespace {

namespace fs = std::filesystem;

std::string timestamped_dir(const std::string& name) {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm local{};
  localtime_r(&now, &local);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &local);
  return "runs/" + name + "-" + buf;
}

// This process's command line, for record.json.
std::string command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string s, arg;
  while (std::getline(in, arg, '\0')) s += (s.empty() ? "" : " ") + arg;
  return s.empty() ? "metaplast campaign" : s;
}

struct CampaignArgs {
  std::string file, station, out, dir;
  std::vector<std::string> pilots;  // check: [STEP=]DIR, pilot runs for the board-store estimates
  bool quiet = false, record = false, yes = false, allow_settings_change = false;
  std::size_t jobs = 1;
  bool oversubscribe = false, slurm = false;
  std::vector<std::string> units;
  std::string extra;
  cluster::SlurmOptions slurm_options;
  instruments::SettingValues board_settings;  // the command line's, over the station's and steps'
  LiveArguments live;
};

// The live view of the campaign this process runs (--live, docs/live.md): its folder followed as
// `metaplast view` follows one (report::FolderView: the steps, their states and folders, the
// progress with an ETA), twice a second on a thread of its own from the moment the run's
// state.json exists. The page's stop action stops the campaign as a first Ctrl-C does.
class CampaignLiveView {
 public:
  CampaignLiveView(const LiveArguments& args, const fs::path& dir)
      : session_(start_live_view(with_files(live_options(args), dir),
                                 {{"command", "campaign"}, {"out_dir", dir.string()}},
                                 dir / kStopRequestsFile)) {
    if (session_) thread_ = std::thread([this, dir] { follow(dir); });
  }
  ~CampaignLiveView() { stop_following(); }
  CampaignLiveView(const CampaignLiveView&) = delete;
  CampaignLiveView& operator=(const CampaignLiveView&) = delete;

  // After a last look at the folder, how the campaign ended (before the command exits).
  void end(const campaign::RunOutcome& outcome) {
    if (!session_) return;
    stop_following();
    const std::string dir = outcome.dir.string();
    switch (outcome.status) {
      case campaign::RunStatus::finished:
        session_->end(live::RunState::finished, 0, "report: metaplast report " + dir);
        return;
      case campaign::RunStatus::interrupted:
        session_->end(live::RunState::stopped, outcome.exit_code(),
                      outcome.message + "; continue with: metaplast campaign resume " + dir);
        return;
      case campaign::RunStatus::aborted:
        session_->end(live::RunState::interrupted, outcome.exit_code(),
                      outcome.message + "; continue with: metaplast campaign resume " + dir);
        return;
      case campaign::RunStatus::failed:
        session_->end(live::RunState::failed, outcome.exit_code(),
                      outcome.message + "; fix the cause, then: metaplast campaign resume " + dir);
        return;
    }
  }
  // A command that throws before the run ends.
  void failed(const std::string& what) {
    if (!session_) return;
    stop_following();
    session_->end(live::RunState::failed, 1, what);
  }

 private:
  void follow(const fs::path& dir) {
    std::optional<report::FolderView> view;
    bool warned = false;
    while (true) {
      const bool last = stop_.load();
      // The view never ends the campaign: a file it cannot read is left for the next poll.
      try {
        if (!view && fs::exists(dir / "state.json")) {
          view.emplace(dir, session_->feed(), report::FolderView::Writer::this_process);
        }
        if (view) view->poll();
      } catch (const std::exception& e) {
        if (!warned) spdlog::warn("live view: cannot follow {}: {}", dir.string(), e.what());
        warned = true;
      }
      if (last) return;
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stop_.load(); });
    }
  }
  void stop_following() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  // The step folders' links open the run's files (GET /files/...).
  static live::LiveOptions with_files(live::LiveOptions options, const fs::path& dir) {
    options.files = dir;
    return options;
  }

  std::unique_ptr<live::LiveSession> session_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::thread thread_;
};

void add_jobs_options(CLI::App* cmd, CampaignArgs& a) {
  cmd->add_option("--jobs", a.jobs,
                  "Units run at once, each as its own process (docs/cluster.md); jobs x the "
                  "units' threads must fit this machine's cores")
      ->check(CLI::Range(1, 1024));
  cmd->add_flag("--oversubscribe", a.oversubscribe,
                "Allow --jobs x threads per unit above this machine's cores");
}

// --yes: permission to pulse a board that is not simulated (campaign::require_pulse_permission);
// and the board settings (--read-voltage, ...) over the station's and the steps'.
void add_board_options(CLI::App* cmd, CampaignArgs& a) {
  cmd->add_flag("--yes", a.yes,
                "Allow steps to pulse a board that is not an in-process sim: board (or set "
                "\"allow_pulses\": true in the station file)");
  add_board_settings_options(cmd, a.board_settings);
}

// --allow-settings-change: resumed train steps may continue with other board settings.
void add_settings_change_option(CLI::App* cmd, CampaignArgs& a) {
  cmd->add_flag("--allow-settings-change", a.allow_settings_change,
                "Let interrupted train steps continue even if the board settings in force "
                "(station file, step) differ from those they started with");
}

void add_slurm_options(CLI::App* cmd, CampaignArgs& a) {
  cmd->add_flag("--slurm", a.slurm, "Submit the units to Slurm (sbatch) as job arrays");
  cmd->add_option("--partition", a.slurm_options.partition, "Slurm partition (sbatch --partition)");
  cmd->add_option("--time", a.slurm_options.time, "Time limit of each job (sbatch --time)");
  cmd->add_option("--cpus-per-task", a.slurm_options.cpus_per_task,
                  "CPUs per array task (default: the job's largest unit thread count)");
  cmd->add_option("--max-parallel", a.slurm_options.max_parallel,
                  "Array tasks running at once (--array=0-(n-1)%K; default: no limit)");
  cmd->add_option("--extra", a.extra,
                  "More sbatch options, space-separated (e.g. \"--mem=4G --account=lab\")");
}

// Submits the units of the run in `dir` that are not done, and says what was submitted.
void submit_to_slurm(const fs::path& dir, CampaignArgs& a, const instruments::Station& station,
                     const std::string& session_command = "") {
  a.slurm_options.extra = cluster::split_extra(a.extra);
  a.slurm_options.yes = a.yes;
  a.slurm_options.allow_settings_change = a.allow_settings_change;
  a.slurm_options.board_settings = a.board_settings;
  const auto jobs =
      cluster::submit(dir, a.slurm_options, "/proc/self/exe", station, session_command);
  for (const auto& j : jobs) {
    const std::string what =
        j.name == "merge" ? "the merge" : std::to_string(j.units.size()) + " unit(s)";
    std::printf("  job %s  %-14s %-12s %s  %s\n", j.job_id.c_str(), j.name.c_str(), what.c_str(),
                j.after.empty() ? "              " : "after earlier", j.script.string().c_str());
  }
  std::printf("submitted %zu jobs; follow with: metaplast campaign status %s\n", jobs.size(),
              dir.string().c_str());
}

campaign::RunOptions run_options(const CampaignArgs& a, const std::string& invocation) {
  campaign::RunOptions options;
  if (!a.station.empty()) options.station_file = a.station;
  options.command_line = invocation;
  options.log_to_stderr = !a.quiet;
  options.record_frames = a.record;
  options.jobs = a.jobs;
  options.oversubscribe = a.oversubscribe;
  options.yes = a.yes;
  options.allow_settings_change = a.allow_settings_change;
  options.board_settings = a.board_settings;
  options.executable = fs::read_symlink("/proc/self/exe");
  return options;
}

// The command line's board settings over the station's, within the station limits, before a run
// directory is made or a board opened (each step checks its own settings again).
void check_board_settings(const CampaignArgs& a, const instruments::Station& station) {
  if (a.board_settings.empty()) return;
  const auto settings = instruments::with_values(
      instruments::with_values({}, station.board_settings), a.board_settings);
  instruments::check_station_limits(settings, station.limits);
}

void finish(const campaign::RunOutcome& outcome, CampaignLiveView& live) {
  live.end(outcome);
  switch (outcome.status) {
    case campaign::RunStatus::finished:
      std::printf("campaign finished: %s\nreport: metaplast report %s\n",
                  outcome.dir.string().c_str(), outcome.dir.string().c_str());
      return;
    case campaign::RunStatus::interrupted:
    case campaign::RunStatus::aborted:
      std::fprintf(stderr,
                   "metaplast: campaign %s: %s\nthe run directory is consistent; continue "
                   "with:\n  metaplast campaign resume %s\n",
                   campaign::to_string(outcome.status), outcome.message.c_str(),
                   outcome.dir.string().c_str());
      break;
    case campaign::RunStatus::failed:
      std::fprintf(stderr,
                   "metaplast: campaign failed: %s\nfix the cause, then retry the step with:\n"
                   "  metaplast campaign resume %s\n",
                   outcome.message.c_str(), outcome.dir.string().c_str());
      break;
  }
  std::fflush(stdout);
  std::exit(outcome.exit_code());
}

}  // namespace

void add_campaign_command(CLI::App& root) {
  auto* cmd = root.add_subcommand(
      "campaign",
      "Scripted campaigns: check a campaign file, run it (--jobs N: units in parallel), resume an "
      "interrupted run, submit it to Slurm, follow and merge it (docs/cluster.md)");
  cmd->require_subcommand(1);
  auto a = std::make_shared<CampaignArgs>();
  const std::string invocation = command_line();

  auto* check = cmd->add_subcommand(
      "check", "Validate a campaign file and print the dry-run plan (no hardware is touched)");
  check->add_option("FILE", a->file, "Campaign file (JSON, docs/campaigns.md)")->required();
  check->add_option("--station", a->station, "Station file to validate with it");
  check->add_option("--pilot", a->pilots,
                    "[STEP=]DIR: the folder of a training run with layers on a board (an "
                    "existing folder is taken whole); its level changes and pulses per write "
                    "estimate the board-store train steps (those of top-level step STEP, or all) "
                    "instead of the stated model (docs/campaigns.md, \"Board time\"); repeatable");
  check->callback([a] {
    auto c = campaign::load_campaign(a->file);
    for (const auto& pilot : a->pilots) {
      // A folder that exists is taken whole (run folders are named "seed=1", "mstar=3", ...).
      const auto equals = fs::is_directory(pilot) ? std::string::npos : pilot.find('=');
      const std::string top = equals == std::string::npos ? "" : pilot.substr(0, equals);
      const std::string dir = equals == std::string::npos ? pilot : pilot.substr(equals + 1);
      campaign::estimate_board_time(c, hil::level_change_model_from_run(dir), top);
    }
    if (!a->station.empty()) {
      const auto station = instruments::load_station(a->station);
      const auto* board = station.array_board();
      std::printf("station \"%s\" OK: chip %s, board %s\n", station.name.c_str(),
                  station.chip.empty() ? "(not given)" : station.chip.c_str(),
                  board ? board->address.c_str() : "(none)");
    }
    std::printf("%s", campaign::format_plan(c).c_str());
    std::printf("%s", campaign::format_units(c.steps, campaign::plan_units(c.steps)).c_str());
    std::printf("campaign file OK: %s\n", a->file.c_str());
  });

  auto* run = cmd->add_subcommand("run", "Run a campaign into a new run directory");
  run->add_option("FILE", a->file, "Campaign file (JSON, docs/campaigns.md)")->required();
  run->add_option("--station", a->station,
                  "Station file (JSON): instruments and addresses, chip, limits");
  run->add_option("--out", a->out, "Run directory (default: runs/<campaign>-<timestamp>)");
  run->add_flag("--quiet", a->quiet, "Log to <run>/campaign.log only");
  run->add_flag("--record", a->record,
                "Record every board frame of each step that opens a board to "
                "<step dir>/frames-<session>.jsonl");
  add_jobs_options(run, *a);
  add_board_options(run, *a);
  add_live_options(run, a->live);
  run->callback([a, invocation] {
    const auto c = campaign::load_campaign(a->file);
    check_board_settings(
        *a, a->station.empty() ? instruments::Station{} : instruments::load_station(a->station));
    campaign::RunOptions options = run_options(*a, invocation);
    options.out_dir = a->out.empty() ? fs::path(timestamped_dir(c.name)) : fs::path(a->out);
    InterruptHandler handler;
    options.interrupts = {&InterruptHandler::stop_requested(),
                          &InterruptHandler::abort_requested()};
    CampaignLiveView live(a->live, options.out_dir);
    std::printf("campaign %s: %zu steps into %s\n", c.name.c_str(), c.steps.size(),
                options.out_dir.string().c_str());
    std::fflush(stdout);
    try {
      finish(campaign::run_campaign(c, options), live);
    } catch (const std::exception& e) {
      live.failed(e.what());
      throw;
    }
  });

  auto* resume = cmd->add_subcommand(
      "resume", "Continue a campaign run after a crash, kill or Ctrl-C (done steps are skipped)");
  resume->add_option("DIR", a->dir, "The run directory `campaign run` wrote")->required();
  resume->add_option("--station", a->station,
                     "Station file replacing the recorded one (e.g. the board moved port)");
  resume->add_flag("--quiet", a->quiet, "Log to <run>/campaign.log only");
  resume->add_flag("--record", a->record,
                   "Record every board frame of each step that opens a board to "
                   "<step dir>/frames-<session>.jsonl");
  add_jobs_options(resume, *a);
  add_slurm_options(resume, *a);
  add_board_options(resume, *a);
  add_settings_change_option(resume, *a);
  add_live_options(resume, a->live);
  resume->callback([a, invocation] {
    if (a->slurm) {
      if (!a->live.port.empty()) {
        throw CLI::ValidationError("campaign resume --slurm --live",
                                   "the units run on the cluster, not here: follow the run "
                                   "folder with `metaplast view " +
                                       a->dir + "`");
      }
      std::optional<fs::path> station_file;
      if (!a->station.empty()) station_file = a->station;
      const auto station = campaign::recorded_station(a->dir, station_file);
      check_board_settings(*a, station);
      const campaign::RunRecord record = campaign::RunRecord::open(a->dir);
      campaign::require_pulse_permission(
          campaign::unfinished_steps(record, campaign::recorded_plan(a->dir)), station, a->yes);
      submit_to_slurm(a->dir, *a, station, invocation);
      return;
    }
    std::optional<fs::path> station_file;
    if (!a->station.empty()) station_file = a->station;
    check_board_settings(*a, campaign::recorded_station(a->dir, station_file));
    campaign::RunOptions options = run_options(*a, invocation);
    InterruptHandler handler;
    options.interrupts = {&InterruptHandler::stop_requested(),
                          &InterruptHandler::abort_requested()};
    CampaignLiveView live(a->live, a->dir);
    try {
      finish(campaign::resume_campaign(a->dir, options), live);
    } catch (const std::exception& e) {
      live.failed(e.what());
      throw;
    }
  });

  auto* submit = cmd->add_subcommand(
      "submit", "Submit a campaign to a Slurm cluster: job arrays per stage, a merge job");
  submit->add_option("FILE", a->file, "Campaign file (JSON, docs/campaigns.md)")->required();
  submit->add_option("--out", a->out,
                     "Run directory, on a file system every node sees (default: "
                     "runs/<campaign>-<timestamp>)");
  submit->add_option("--station", a->station, "Station file (its \"slurm\" key places board jobs)");
  add_slurm_options(submit, *a);
  add_board_options(submit, *a);
  submit->callback([a, invocation] {
    if (!a->slurm) {
      throw CLI::ValidationError("campaign submit",
                                 "give --slurm (the scheduler it submits to); on one machine "
                                 "use `metaplast campaign run FILE --jobs N`");
    }
    a->slurm_options.extra = cluster::split_extra(a->extra);
    cluster::check_slurm_options(a->slurm_options);
    const auto c = campaign::load_campaign(a->file);
    cluster::check_slurm_answers();
    instruments::Station station;
    if (!a->station.empty()) station = instruments::load_station(a->station);
    check_board_settings(*a, station);
    campaign::require_pulse_permission(c.steps, station, a->yes);
    const fs::path dir = a->out.empty() ? fs::path(timestamped_dir(c.name)) : fs::path(a->out);
    campaign::RunRecord::create(dir, c, instruments::to_json(station), invocation);
    std::printf("campaign %s: %zu steps into %s\n", c.name.c_str(), c.steps.size(),
                dir.string().c_str());
    submit_to_slurm(dir, *a, station);
  });

  auto* unit = cmd->add_subcommand(
      "run-unit", "Run units of a run directory in this process (what --jobs and Slurm tasks run)");
  unit->add_option("DIR", a->dir, "The run directory")->required();
  unit->add_option("UNIT", a->units, "Step ids or plan positions, run in the order given")
      ->required();
  unit->add_flag("--quiet", a->quiet, "Log to <run>/campaign.log only");
  unit->add_flag("--record", a->record, "Record every board frame (as campaign run --record)");
  add_board_options(unit, *a);
  add_settings_change_option(unit, *a);
  unit->callback([a, invocation] {
    campaign::RunOptions options = run_options(*a, invocation);
    InterruptHandler handler;
    options.interrupts = {&InterruptHandler::stop_requested(),
                          &InterruptHandler::abort_requested()};
    const auto outcome = campaign::run_units(a->dir, a->units, options);
    if (outcome.status != campaign::RunStatus::finished) {
      std::fprintf(stderr, "metaplast: %s\n", outcome.message.c_str());
    }
    std::exit(outcome.exit_code());
  });

  auto* merge = cmd->add_subcommand(
      "merge", "End a run whose units ran elsewhere: the record's end and the report");
  merge->add_option("DIR", a->dir, "The run directory")->required();
  merge->callback([a, invocation] {
    campaign::RunOptions options = run_options(*a, invocation);
    const auto outcome = campaign::merge_run(a->dir, options);
    if (outcome.status != campaign::RunStatus::finished) {
      std::fprintf(stderr, "metaplast: campaign merge %s: %s\n", a->dir.c_str(),
                   outcome.message.c_str());
      std::exit(outcome.exit_code());
    }
    std::printf("campaign merged: %s\nreport: %s/report/index.html\n", a->dir.c_str(),
                a->dir.c_str());
  });

  auto* status =
      cmd->add_subcommand("status", "Each unit's state, from the run directory and Slurm's queue");
  status->add_option("DIR", a->dir, "The run directory")->required();
  status->callback([a] { std::printf("%s", cluster::format_status(a->dir).c_str()); });
}

}  // namespace metaplast::cli
