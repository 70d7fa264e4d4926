#include "app/cluster/slurm.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

#include "app/campaign/run_record.hpp"
#include "app/campaign/units.hpp"
#include "app/runner/runner.hpp"
#include "app/util/process.hpp"
#include "common/atomic_file.hpp"
#include "common/clock.hpp"

namespace metaplast::cluster {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kSlurmDir = "slurm";
constexpr const char* kJobsFile = "jobs.json";

bool name_chars(const std::string& text, std::string_view more) {
  return std::all_of(text.begin(), text.end(), [&](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || more.find(c) != std::string_view::npos;
  });
}

// A path written into a script between single quotes: no quote, no control character.
std::string quoted_path(const fs::path& path, const char* what) {
  const std::string text = path.string();
  for (const char c : text) {
    if (c == '\'' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      throw std::invalid_argument(std::string(what) + " " + text +
                                  " holds a quote or a control character, which the batch "
                                  "scripts cannot carry: use a path without them");
    }
  }
  return "'" + text + "'";
}

// The program Slurm's commands are found as, or a clear error.
std::string slurm_program(const char* name) {
  if (const auto path = util::find_program(name)) return path->string();
  throw std::runtime_error(std::string(name) +
                           " not found on PATH: campaign submit/resume --slurm needs Slurm's "
                           "client commands (Debian: apt-get install slurm-client; on a "
                           "cluster, run it on a login node), or run the campaign on this "
                           "machine with `metaplast campaign run FILE --jobs N`");
}

// The executable's real path (/proc/self/exe names whoever reads it: bash, in a script).
fs::path resolved(const fs::path& executable) {
  std::error_code error;
  const fs::path real = fs::canonical(executable, error);
  return error ? fs::absolute(executable) : real;
}

std::string trimmed(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

json read_jobs(const fs::path& dir) {
  const fs::path file = dir / kSlurmDir / kJobsFile;
  if (!fs::exists(file)) return {{"submissions", json::array()}};
  return campaign::read_json(file);
}

// Recorded job ids of every submission of the run.
std::set<std::string> recorded_job_ids(const json& jobs) {
  std::set<std::string> ids;
  for (const auto& s : jobs["submissions"]) {
    for (const auto& j : s["jobs"]) ids.insert(j["job_id"].get<std::string>());
  }
  return ids;
}

struct QueueEntry {
  std::string job;    // the job (array) id sbatch gave: squeue's %F
  std::string task;   // squeue's %i: "123", "123_4", "123_[0-5%2]"
  std::string state;  // PENDING, RUNNING, ...
  std::string reason;
};

// squeue's view of the jobs of this run (all users' queue filtered by the recorded ids); nullopt
// when squeue is missing or fails.
std::optional<std::vector<QueueEntry>> queue_of(const std::set<std::string>& ids) {
  const auto squeue = util::find_program("squeue");
  if (!squeue) return std::nullopt;
  util::ProcessOptions options;
  options.timeout = std::chrono::seconds(60);
  const auto r = util::run_process({squeue->string(), "-h", "-o", "%F|%i|%T|%R"}, options);
  if (!r.ok()) return std::nullopt;
  std::vector<QueueEntry> entries;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<std::string> f;
    std::istringstream fields(line);
    std::string field;
    while (std::getline(fields, field, '|')) f.push_back(field);
    if (f.size() >= 3 && ids.count(f[0]))
      entries.push_back({f[0], f[1], f[2], f.size() > 3 ? f[3] : ""});
  }
  return entries;
}

// sacct's view of the jobs that did not complete (failed, cancelled, timed out, out of memory),
// one line each; "" when all completed; nullopt when sacct is missing or the cluster keeps no
// accounting.
std::optional<std::string> accounting_of(const std::set<std::string>& ids) {
  const auto sacct = util::find_program("sacct");
  if (!sacct || ids.empty()) return std::nullopt;
  std::string list;
  for (const auto& id : ids) list += (list.empty() ? "" : ",") + id;
  util::ProcessOptions options;
  options.timeout = std::chrono::seconds(60);
  const auto r = util::run_process(
      {sacct->string(), "-n", "-P", "-X", "-j", list, "-o", "JobID,JobName,State,ExitCode"},
      options);
  if (!r.ok()) return std::nullopt;
  std::string out;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line.find("|COMPLETED|") != std::string::npos ||
        line.find("|RUNNING|") != std::string::npos ||
        line.find("|PENDING|") != std::string::npos) {
      continue;
    }
    std::replace(line.begin(), line.end(), '|', ' ');
    out += "  sacct: " + line + "\n";
  }
  return out;
}

struct Plan {
  std::vector<campaign::PlannedStep> steps;
  std::vector<campaign::Unit> units;
};

std::string script_header(const std::string& title, const fs::path& dir,
                          const SlurmOptions& options, int cpus, const std::string& job_name) {
  std::ostringstream s;
  s << "#!/bin/bash\n"
    << "# " << title << "\n"
    << "# Written by `metaplast campaign submit` (docs/cluster.md) for the run directory\n"
    << "#   " << dir.string() << "\n"
    << "# --output, --dependency and --kill-on-invalid-dep are on sbatch's command line (above).\n"
    << "#SBATCH --job-name=" << job_name << "\n"
    << "#SBATCH --cpus-per-task=" << cpus << "\n";
  if (!options.partition.empty()) s << "#SBATCH --partition=" << options.partition << "\n";
  if (!options.time.empty()) s << "#SBATCH --time=" << options.time << "\n";
  for (const auto& e : options.extra) s << "#SBATCH " << e << "\n";
  return s.str();
}

// "#   task 0: unit 4 = sweep/mstar=3" per unit (array tasks), or "#   unit 4 = ..." (in order).
std::string units_comment(const Plan& plan, const std::vector<std::size_t>& units, bool tasks) {
  std::ostringstream s;
  for (std::size_t k = 0; k < units.size(); ++k) {
    s << "#   ";
    if (tasks) s << "task " << k << ": ";
    s << "unit " << units[k] << " = " << plan.steps[units[k]].id << "\n";
  }
  return s.str();
}

int job_cpus(const Plan& plan, const std::vector<std::size_t>& units, const SlurmOptions& o) {
  if (o.cpus_per_task > 0) return o.cpus_per_task;
  int cpus = 1;
  for (const std::size_t u : units) cpus = std::max(cpus, plan.units[u].threads);
  return cpus;
}

std::string job_name_prefix(const std::string& campaign) {
  std::string name = "mp-";
  for (const char c : campaign) {
    name += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ? c : '_';
  }
  return name.substr(0, 40);
}

class Submission {
 public:
  Submission(const fs::path& dir, const SlurmOptions& options, const fs::path& executable,
             const instruments::Station& station, std::string session_command)
      : session_command_(std::move(session_command)),
        dir_(fs::absolute(dir).lexically_normal()),
        options_(options),
        station_(station),
        exe_(quoted_path(resolved(executable), "the metaplast executable")),
        dir_text_(quoted_path(dir_, "the run directory")) {}

  std::vector<SlurmJob> run() {
    check_slurm_options(options_);
    check_slurm_answers();
    const std::string sbatch = slurm_program("sbatch");
    json jobs_record = read_jobs(dir_);
    refuse_if_active(jobs_record);
    campaign::RunRecord record = campaign::RunRecord::open(dir_);
    if (!session_command_.empty()) record.begin_session(session_command_, "incomplete");
    plan_.steps = campaign::recorded_plan(dir_);
    plan_.units = campaign::plan_units(plan_.steps);
    const std::size_t n = jobs_record["submissions"].size() + 1;
    out_ = dir_ / kSlurmDir / ("submit-" + std::to_string(n));
    fs::create_directories(out_);
    prefix_ = job_name_prefix(record.plan().value("campaign", std::string("campaign")));

    std::vector<SlurmJob> jobs;
    std::vector<std::string> previous;  // the jobs of the last stage that has any
    for (std::size_t stage = 0; stage < campaign::stage_count(plan_.units); ++stage) {
      std::vector<std::size_t> software, board;
      for (const auto& u : plan_.units) {
        if (u.stage != stage || record.status_of(plan_.steps[u.index].id) == campaign::kDone) {
          continue;
        }
        (u.board ? board : software).push_back(u.index);
      }
      std::vector<std::string> this_stage;
      if (!software.empty()) {
        jobs.push_back(array_job(stage, software, previous));
        this_stage.push_back(submit_job(sbatch, jobs.back()));
      }
      if (!board.empty()) {
        jobs.push_back(board_job(stage, board, previous));
        this_stage.push_back(submit_job(sbatch, jobs.back()));
      }
      if (!this_stage.empty()) previous = this_stage;
    }
    jobs.push_back(merge_job(previous));
    submit_job(sbatch, jobs.back());
    record_submission(jobs_record, n, jobs);
    return jobs;
  }

 private:
  std::string session_command_;
  fs::path dir_, out_;
  SlurmOptions options_;
  instruments::Station station_;
  std::string exe_, dir_text_, prefix_;
  Plan plan_;
  std::vector<std::string> submitted_;

  void refuse_if_active(const json& jobs_record) {
    const auto ids = recorded_job_ids(jobs_record);
    if (ids.empty()) return;
    const auto queue = queue_of(ids);
    if (!queue) {
      throw std::runtime_error(
          "cannot ask squeue whether this run's earlier jobs still run: check that Slurm's "
          "commands work here (squeue)");
    }
    if (queue->empty()) return;
    std::string active;
    for (const auto& e : *queue) active += (active.empty() ? "" : ", ") + e.task + " " + e.state;
    throw std::invalid_argument(
        "jobs of an earlier submission of this run are still queued or "
        "running (" +
        active +
        "): wait for them, or scancel them, then "
        "resume again");
  }

  SlurmJob array_job(std::size_t stage, const std::vector<std::size_t>& units,
                     const std::vector<std::string>& after) {
    SlurmJob job;
    job.name = "stage" + std::to_string(stage);
    job.array = true;
    job.units = units;
    job.after = after;
    job.script = out_ / (job.name + ".sbatch");
    std::ostringstream s;
    s << script_header(
        "metaplast campaign: stage " + std::to_string(stage) + ", " + std::to_string(units.size()) +
            " independent unit(s), one array task each",
        dir_, options_, job_cpus(plan_, units, options_), prefix_ + "-s" + std::to_string(stage));
    s << "#SBATCH --array=0-" << units.size() - 1;
    if (options_.max_parallel > 0 &&
        static_cast<std::size_t>(options_.max_parallel) < units.size()) {
      s << "%" << options_.max_parallel;
    }
    s << "\n# Array task -> unit (its position in plan.json):\n"
      << units_comment(plan_, units, true) << "set -eu\nunits=(";
    for (std::size_t k = 0; k < units.size(); ++k) s << (k ? " " : "") << units[k];
    s << ")\nexec " << exe_ << " campaign run-unit " << dir_text_
      << " \"${units[$SLURM_ARRAY_TASK_ID]}\"" << run_unit_flags() << "\n";
    write_script(job, s.str());
    return job;
  }

  // The flags every run-unit line carries: the permissions given to the submission.
  std::string run_unit_flags() const {
    std::string flags = std::string(options_.yes ? " --yes" : "") +
                        (options_.allow_settings_change ? " --allow-settings-change" : "");
    // Option names and numbers only (instruments::setting_arguments): nothing for a shell to read.
    for (const auto& a : instruments::setting_arguments(options_.board_settings)) flags += " " + a;
    return flags;
  }

  SlurmJob board_job(std::size_t stage, const std::vector<std::size_t>& units,
                     const std::vector<std::string>& after) {
    SlurmJob job;
    job.name = "stage" + std::to_string(stage) + "-board";
    job.units = units;
    job.after = after;
    job.script = out_ / (job.name + ".sbatch");
    std::ostringstream s;
    s << script_header("metaplast campaign: stage " + std::to_string(stage) + ", " +
                           std::to_string(units.size()) +
                           " unit(s) that drive the station's board, one after another",
                       dir_, options_, job_cpus(plan_, units, options_),
                       prefix_ + "-s" + std::to_string(stage) + "-board");
    if (!station_.slurm.nodelist.empty())
      s << "#SBATCH --nodelist=" << station_.slurm.nodelist << "\n";
    if (!station_.slurm.gres.empty()) s << "#SBATCH --gres=" << station_.slurm.gres << "\n";
    if (station_.slurm.nodelist.empty() && station_.slurm.gres.empty()) {
      s << "# The station file names no node (\"slurm\": {\"nodelist\": ...}): any node runs it.\n";
    }
    s << "# In order:\n"
      << units_comment(plan_, units, false) << "set -eu\nexec " << exe_ << " campaign run-unit "
      << dir_text_;
    for (const std::size_t u : units) s << " " << u;
    s << run_unit_flags() << "\n";
    write_script(job, s.str());
    return job;
  }

  SlurmJob merge_job(const std::vector<std::string>& after) {
    SlurmJob job;
    job.name = "merge";
    job.after = after;
    job.script = out_ / "merge.sbatch";
    SlurmOptions merge_options = options_;
    std::ostringstream s;
    s << script_header("metaplast campaign: the final merge (the record's end and the report)",
                       dir_, merge_options, 1, prefix_ + "-merge")
      << "set -eu\nexec " << exe_ << " campaign merge " << dir_text_ << "\n";
    write_script(job, s.str());
    return job;
  }

  // sbatch's arguments for `job` (its script last).
  std::vector<std::string> sbatch_arguments(const SlurmJob& job) const {
    std::vector<std::string> argv = {
        "--parsable",
        "--output=" + (out_ / (job.name + (job.array ? "-%A_%a.out" : "-%j.out"))).string()};
    if (!job.after.empty()) {
      std::string dependency = "--dependency=afterok";
      for (const auto& id : job.after) dependency += ":" + id;
      argv.push_back(dependency);
      argv.push_back("--kill-on-invalid-dep=yes");
    }
    argv.push_back(job.script.string());
    return argv;
  }

  // The script's text, starting with how it was submitted (so it can be submitted by hand).
  void write_script(const SlurmJob& job, const std::string& text) {
    std::string how = "# Submitted as: sbatch";
    for (const auto& a : sbatch_arguments(job)) how += " " + a;
    const std::size_t first_line = text.find('\n', text.find('\n') + 1) + 1;  // after the title
    common::write_file_atomically(
        job.script, text.substr(0, first_line) + how + "\n" + text.substr(first_line));
  }

  std::string submit_job(const std::string& sbatch, SlurmJob& job) {
    std::vector<std::string> argv = sbatch_arguments(job);
    argv.insert(argv.begin(), sbatch);
    util::ProcessOptions options;
    options.timeout = std::chrono::seconds(120);
    const auto r = util::run_process(argv, options);
    std::string id = r.out.substr(0, r.out.find_first_of(";\n"));
    if (!r.ok() || id.empty() || !name_chars(id, "")) {
      std::string submitted;
      for (const auto& j : submitted_) submitted += (submitted.empty() ? "" : ", ") + j;
      throw std::runtime_error(
          "sbatch refused " + job.script.string() + " (" + r.describe() + "): " + trimmed(r.err) +
          (submitted.empty() ? "; nothing was submitted"
                             : "; the jobs submitted before it (" + submitted +
                                   ") keep running: scancel them or let them end") +
          "; then `metaplast campaign resume " + dir_.string() + " --slurm`");
    }
    job.job_id = id;
    submitted_.push_back(id);
    return id;
  }

  void record_submission(json& jobs_record, std::size_t n, const std::vector<SlurmJob>& jobs) {
    json list = json::array();
    for (const auto& j : jobs) {
      list.push_back({{"name", j.name},
                      {"script", fs::relative(j.script, dir_).string()},
                      {"job_id", j.job_id},
                      {"units", j.units},
                      {"after", j.after}});
    }
    jobs_record["submissions"].push_back(
        {{"submission", n}, {"date", common::utc_now_iso8601()}, {"jobs", list}});
    campaign::write_json_atomically(dir_ / kSlurmDir / kJobsFile, jobs_record);
  }
};

}  // namespace

void check_slurm_options(const SlurmOptions& o) {
  if (!o.partition.empty() && (o.partition.size() > 64 || !name_chars(o.partition, "._-"))) {
    throw std::invalid_argument("--partition \"" + o.partition +
                                "\": give a partition name (1..64 of [A-Za-z0-9._-]; `sinfo` "
                                "lists them)");
  }
  static const std::regex time_format(R"(^([0-9]{1,4}-)?[0-9]{1,6}(:[0-9]{1,2}){0,2}$)");
  if (!o.time.empty() && o.time != "UNLIMITED" && o.time != "INFINITE" &&
      !std::regex_match(o.time, time_format)) {
    throw std::invalid_argument("--time \"" + o.time +
                                "\": give a Slurm time limit: MINUTES, MM:SS, HH:MM:SS, D-HH, "
                                "D-HH:MM or D-HH:MM:SS");
  }
  if (o.cpus_per_task < 0 || o.cpus_per_task > 1024) {
    throw std::invalid_argument("--cpus-per-task " + std::to_string(o.cpus_per_task) +
                                ": give 1..1024 (0 or none: each job's largest unit thread count)");
  }
  if (o.max_parallel < 0 || o.max_parallel > 100000) {
    throw std::invalid_argument("--max-parallel " + std::to_string(o.max_parallel) +
                                ": give 1..100000 (0 or none: no limit)");
  }
  for (const auto& e : o.extra) {
    const bool ok = e.size() >= 2 && e.size() <= 256 && e[0] == '-' &&
                    std::all_of(e.begin(), e.end(), [](char c) {
                      const auto u = static_cast<unsigned char>(c);
                      return u > 0x20 && u != 0x7f && c != '\'' && c != '"' && c != '\\' &&
                             c != '`' && c != '$';
                    });
    if (!ok) {
      throw std::invalid_argument(
          "--extra option \"" + e +
          "\": each sbatch option must be one word starting with '-' (e.g. --mem=4G "
          "--account=lab), without quotes, backslashes, '$' or '`'");
    }
  }
}

void check_slurm_answers() {
  const std::string sinfo = slurm_program("sinfo");
  slurm_program("sbatch");
  util::ProcessOptions options;
  options.timeout = std::chrono::seconds(60);
  const auto r = util::run_process({sinfo, "-h", "-o", "%P"}, options);
  if (!r.ok()) {
    throw std::runtime_error("Slurm does not answer (sinfo: " + r.describe() +
                             "): " + trimmed(r.err) +
                             "; check that this machine is a Slurm client (SLURM_CONF, munge) "
                             "and that `sinfo` works here");
  }
}

std::vector<std::string> split_extra(const std::string& text) {
  std::vector<std::string> words;
  std::istringstream in(text);
  std::string w;
  while (in >> w) words.push_back(w);
  return words;
}

std::vector<SlurmJob> submit(const fs::path& dir, const SlurmOptions& options,
                             const fs::path& executable, const instruments::Station& station,
                             const std::string& session_command) {
  return Submission(dir, options, executable, station, session_command).run();
}

std::string format_status(const fs::path& dir) {
  campaign::RunRecord record = campaign::RunRecord::open(dir);
  const auto steps = campaign::recorded_plan(dir);
  const json jobs = read_jobs(dir);
  std::ostringstream out;
  std::map<std::string, std::size_t> counts;
  for (const auto& s : record.state()["steps"]) ++counts[s["status"].get<std::string>()];
  out << "campaign " << record.record().value("campaign", "?") << " in " << dir.string() << ": "
      << record.record().value("status", "?") << "; steps:";
  for (const auto& [status, n] : counts) out << " " << n << " " << status;
  out << "\n";

  // Slurm: which job of the latest submission holds each unit, and the queue's view of it.
  std::map<std::size_t, std::string> holder;
  std::map<std::string, std::string> job_state;
  if (!jobs["submissions"].empty()) {
    const json& last = jobs["submissions"].back();
    const auto queue = queue_of(recorded_job_ids(jobs));
    out << "slurm submission " << last["submission"].get<int>() << " ("
        << last["date"].get<std::string>() << "):";
    if (!queue) out << " (squeue not available: job states unknown)";
    out << "\n";
    for (const auto& j : last["jobs"]) {
      const std::string id = j["job_id"];
      std::map<std::string, std::size_t> states;
      if (queue) {
        for (const auto& e : *queue) {
          if (e.job == id)
            ++states[e.state + (e.reason.empty() || e.reason == "(None)" ? "" : " " + e.reason)];
        }
      }
      std::string state;
      for (const auto& [st, n] : states)
        state += (state.empty() ? "" : ", ") + std::to_string(n) + " " + st;
      if (queue && state.empty()) state = "not in the queue (ended)";
      job_state[id] = state;
      out << "  job " << id << " " << j["name"].get<std::string>() << ": " << state << "\n";
      for (const auto& u : j["units"])
        holder[u.get<std::size_t>()] = j["name"].get<std::string>() + " (" + id + ")";
    }
  }
  if (!jobs["submissions"].empty()) {
    const auto accounting = accounting_of(recorded_job_ids(jobs));
    if (!accounting) {
      out << "  (sacct: no job accounting here; a task that failed before its unit started shows "
             "in its output, "
          << (fs::path(dir) / kSlurmDir / "submit-<n>" / "<job>-<id>.out").string() << ")\n";
    } else {
      out << *accounting;
    }
  }
  out << "units:\n";
  for (std::size_t i = 0; i < steps.size(); ++i) {
    std::string status = record.status_of(steps[i].id);
    out << "  " << i << "  " << steps[i].id << "  " << status;
    const json& s = record.step(steps[i].id);
    if (s.contains("attempt")) out << "  on " << s["attempt"].value("host", "?");
    if (s.contains("attempt") && s["attempt"].contains("slurm_job")) {
      out << " job " << s["attempt"]["slurm_job"].get<std::string>();
    }
    if (s.contains("error")) out << "  error: " << s["error"].get<std::string>();
    if (status != campaign::kDone && holder.count(i)) out << "  [" << holder[i] << "]";
    out << "\n";
  }
  return out.str();
}

}  // namespace metaplast::cluster
