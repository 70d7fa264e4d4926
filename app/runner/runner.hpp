// Runs a campaign's plan into a run directory (app/campaign/run_record.hpp), or continues one
// after a crash, kill -9 or Ctrl-C: done steps are skipped, an interrupted train step continues
// from its last epoch checkpoint, any other interrupted step starts again.
#pragma once

#include <atomic>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "app/campaign/campaign.hpp"
#include "app/campaign/run_record.hpp"
#include "instruments/board_settings.hpp"
#include "instruments/station_limits.hpp"

namespace metaplast::campaign {

// Set from the CLI's SIGINT handler: the first Ctrl-C sets stop (finish the epoch in progress,
// checkpoint it, stop), the second sets abort (stop after the training step or board batch in
// flight). Null pointers are ignored.
struct Interrupts {
  const std::atomic<bool>* stop = nullptr;
  const std::atomic<bool>* abort = nullptr;
};

struct RunOptions {
  std::filesystem::path out_dir;
  std::optional<std::filesystem::path> station_file;  // none: built-in limits, no instruments
  std::string command_line;                           // recorded in record.json
  Interrupts interrupts;
  bool log_to_stderr = true;  // the log also goes to <run>/campaign.log
  // Every board frame of a step that opens a board to <step dir>/frames-<session>.jsonl
  // (session: 1 for `run`, 2 for the first `resume`, ...; a resumed step keeps earlier files).
  bool record_frames = false;
  // Units run at once (docs/cluster.md): 1 runs the steps in this process, in plan order; more
  // runs each unit as a child process `executable campaign run-unit DIR UNIT`.
  std::size_t jobs = 1;
  bool oversubscribe = false;  // allow jobs x threads per unit above this machine's cores
  // --yes: steps may pulse a board that is not simulated (require_pulse_permission); passed on
  // to the run-unit children of --jobs.
  bool yes = false;
  // A resumed train step may continue with other board settings than it started with
  // (--allow-settings-change).
  bool allow_settings_change = false;
  // Board settings from the command line (over the station's and the steps'), for every step that
  // opens a board; passed on to the run-unit children of --jobs.
  instruments::SettingValues board_settings;
  std::filesystem::path executable = "/proc/self/exe";
};

enum class RunStatus { finished, interrupted, aborted, failed };
const char* to_string(RunStatus status);

struct RunOutcome {
  RunStatus status = RunStatus::finished;
  std::string message;  // what happened (interrupted where, error text)
  std::filesystem::path dir;
  int exit_code() const;  // 0 finished, 130 interrupted/aborted, 1 failed
};

// A new run of `campaign` in options.out_dir (absent or empty). Errors before the run directory
// exists (bad station file, directory not empty) throw; errors in a step end the run with
// RunStatus::failed, recorded in the run directory (the step can be retried with resume).
RunOutcome run_campaign(const Campaign& campaign, const RunOptions& options);

// Continues the run in `dir` with the campaign and station as recorded there (options.out_dir is
// ignored; options.station_file, if given, replaces the recorded station's addresses and limits:
// a board may have moved to another port).
RunOutcome resume_campaign(const std::filesystem::path& dir, const RunOptions& options);

// The one safety rule (board::require_pulse_permission) over the steps that will run: a step that
// pulses a board that is not simulated (pulsed_board_address) needs `yes` or the station's
// "allow_pulses". Throws std::invalid_argument naming the step and its board. run_campaign,
// resume_campaign and run_units call it before anything runs; Slurm submission calls it itself.
void require_pulse_permission(const std::vector<PlannedStep>& steps,
                              const instruments::Station& station, bool yes);

// Throws std::invalid_argument when options.jobs units of the plan's largest thread count would
// need more cores than this machine has (unless options.oversubscribe), or jobs is 0.
void check_thread_budget(const std::vector<PlannedStep>& steps, const RunOptions& options);

// Runs the named units (step ids or plan positions, docs/cluster.md) of the run in `dir`, in the
// order given, in this process (campaign run-unit: a --jobs child or a Slurm array task). No
// session is recorded: the session belongs to whoever runs or submitted the campaign. A unit
// already done is skipped; a unit whose predecessors are not done fails, as does a unit another
// process is running. Stops at the first unit that does not finish.
RunOutcome run_units(const std::filesystem::path& dir, const std::vector<std::string>& units,
                     const RunOptions& options);

// The station of the run in `dir`: `station_file` when given (the board may have moved to another
// port), else the one recorded in station.json.
instruments::Station recorded_station(const std::filesystem::path& dir,
                                      const std::optional<std::filesystem::path>& station_file);

// The steps of `steps` that are not done in `record` (what a resume runs or submits).
std::vector<PlannedStep> unfinished_steps(const RunRecord& record,
                                          const std::vector<PlannedStep>& steps);

// The plan recorded in the run directory `dir`.
std::vector<PlannedStep> recorded_plan(const std::filesystem::path& dir);

// Ends a run whose units ran elsewhere (campaign merge, the last job of a Slurm submission):
// with every step done, the session is ended "finished" and the report drawn; else
// RunStatus::failed naming the steps not done (nothing is changed).
RunOutcome merge_run(const std::filesystem::path& dir, const RunOptions& options);

}  // namespace metaplast::campaign
