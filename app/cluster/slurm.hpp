// Campaigns on a Slurm cluster (docs/cluster.md): metaplast plans, Slurm executes. A submission
// writes readable batch scripts into <run>/slurm/submit-<n>/ and submits them with sbatch: per
// stage of independent units (app/campaign/units.hpp) one job array of its software units
// (`--array=0-(n-1)%K`) and one job of its board units (run one after another, pinned to the
// station's node), each stage after the previous one (`--dependency=afterok:`), and a final merge
// job. Every task runs `metaplast campaign run-unit DIR UNIT`. No string reaches a shell: sbatch,
// squeue and scancel are run from argument vectors, and the scripts hold only quoted paths,
// plan positions and validated sbatch options.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/campaign/campaign.hpp"
#include "instruments/board_settings.hpp"
#include "instruments/station_limits.hpp"

namespace metaplast::cluster {

struct SlurmOptions {
  std::string partition;           // --partition (empty: the cluster's default)
  std::string time;                // --time per job (empty: the partition's default)
  int cpus_per_task = 0;           // 0: each job's largest unit thread count
  int max_parallel = 0;            // array tasks at once (%K); 0: no limit
  std::vector<std::string> extra;  // more sbatch options, one per element ("--mem=4G")
  bool yes = false;  // the tasks run `run-unit --yes` (permission to pulse a real board)
  // The tasks run `run-unit --allow-settings-change` (resumed train steps may continue with other
  // board settings, docs/bench.md).
  bool allow_settings_change = false;
  // The tasks run `run-unit` with these board settings (--read-voltage 0.25 ...).
  instruments::SettingValues board_settings;
};

// Checks the options (partition and node names, time format, ranges, each extra option a single
// "-x"/"--name[=value]" token without control characters or quotes). Throws
// std::invalid_argument naming the option and what is accepted.
void check_slurm_options(const SlurmOptions& options);

// Checks that Slurm's commands are on PATH and that the cluster answers (`sinfo`), before
// anything is created or submitted. Throws std::runtime_error saying what to install or fix.
void check_slurm_answers();

// Splits --extra "sbatch options" at white space (no quoting: an option holding spaces cannot be
// given here; write it into the scripts instead).
std::vector<std::string> split_extra(const std::string& text);

// One submitted job.
struct SlurmJob {
  std::string name;                // "stage0", "stage0-board", "merge"
  std::filesystem::path script;    // the batch script
  std::string job_id;              // sbatch's answer
  bool array = false;              // a job array (one task per unit)
  std::vector<std::size_t> units;  // plan positions it runs (the array's tasks, in order)
  std::vector<std::string> after;  // job ids it waits on (afterok)
};

// Writes the batch scripts for every unit of the run in `dir` that is not done yet and submits
// them (sbatch from PATH). `executable` is the metaplast that the tasks run. The station's
// "slurm" key places the board job (nodelist, gres). The submission is recorded in
// <dir>/slurm/jobs.json. Throws std::runtime_error when sbatch is missing (saying what to
// install) or refuses a script (with its message), std::invalid_argument for bad options or when
// jobs of an earlier submission of this run are still queued or running. A non-empty
// `session_command` (campaign resume --slurm) begins a new session in record.json once those
// checks have passed (the previous unended one marked "incomplete").
std::vector<SlurmJob> submit(const std::filesystem::path& dir, const SlurmOptions& options,
                             const std::filesystem::path& executable,
                             const instruments::Station& station,
                             const std::string& session_command = "");

// `campaign status`: each unit's state from the run directory, with the Slurm job that holds it
// and that job's state from squeue (when Slurm's commands are there).
std::string format_status(const std::filesystem::path& dir);

}  // namespace metaplast::cluster
