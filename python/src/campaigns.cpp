// metaplast.characterize and the campaigns (docs/python.md, "Characterisation" and
// "Campaigns"): the command line's `characterize` and `campaign check/run/resume`, with their
// options as keyword arguments, on a thread of their own (background.hpp).
#include <pybind11/stl.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stdexcept>

#include "app/campaign/campaign.hpp"
#include "app/campaign/units.hpp"
#include "app/cli/commands.hpp"
#include "app/runner/runner.hpp"
#include "app/util/process.hpp"
#include "instruments/station_limits.hpp"
#include "python/src/background.hpp"
#include "python/src/bindings.hpp"

namespace metaplast::python {

namespace {

namespace fs = std::filesystem;

// Thrown by the characterisation's progress hook when the waiting thread asked to abort: the
// measurement ends there and the board goes safe (nothing is written).
class Interrupted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

nlohmann::json characterize_result(const cli::CharacterizeOutcome& o) {
  return {{"out", o.out_dir.string()},
          {"calibration", (o.out_dir / "calibration.json").string()},
          {"chip", o.chip_id},
          {"board", {{"model", o.info.model}, {"serial", o.info.serial}}},
          {"board_levels", board_info_json(o.info).at("levels")},
          {"cells_measured", o.data.cells.size()},
          {"bad_cells", o.result.bad_cells.size()},
          {"unformed_cells", o.data.scan.unformed.size()},
          {"plot", o.plot_error.empty() ? nlohmann::json((o.out_dir / "cdf.png").string())
                                        : nlohmann::json(nullptr)},
          {"plot_error", o.plot_error},
          {"chip_record", o.registry_note}};
}

py::object characterize(const py::object& progress, const py::kwargs& options) {
  cli::CharacterizeJob job;
  try {
    job = cli::parse_characterize_job(command_arguments(options, "characterize()"));
  } catch (const CLI::ParseError& e) {
    throw std::invalid_argument(parse_error_message("characterize()", e));
  }
  BackgroundWork work(BackgroundWork::FirstInterrupt::abort);
  job.options.progress = [&work](const hil::CampaignProgress& p) {
    if (work.abort_flag()) throw Interrupted("characterize: interrupted");
    work.report({{"level", p.level}, {"steps_done", p.steps_done}, {"steps_total", p.steps_total}});
  };
  job.options.log = [&work](const std::string& line) { work.report({{"log", line}}); };
  work.start([&job] { return characterize_result(cli::run_characterize_job(job)); });
  return work.wait(progress);
}

// A campaign given as a dict or as a file name.
campaign::Campaign campaign_of(const py::object& given) {
  if (py::isinstance<py::dict>(given)) {
    return campaign::parse_campaign(to_json(given, "campaign"), "campaign (a Python dict)");
  }
  if (py::isinstance<py::str>(given) || py::hasattr(given, "__fspath__")) {
    return campaign::load_campaign(py::str(given).cast<std::string>());
  }
  throw std::invalid_argument("campaign: expected a dict (the campaign document) or a file name");
}

py::object check_campaign(const py::object& given, const std::optional<std::string>& station) {
  const campaign::Campaign c = campaign_of(given);
  nlohmann::json plan = campaign::plan_json(c);
  if (station) {
    const instruments::Station s = instruments::load_station(*station);
    plan["station"] = instruments::to_json(s);
  }
  plan["text"] =
      campaign::format_plan(c) + campaign::format_units(c.steps, campaign::plan_units(c.steps));
  return from_json(plan);
}

// The metaplast executable the --jobs children run: $METAPLAST_EXECUTABLE, else the one built
// beside this module, else `metaplast` on PATH.
fs::path metaplast_executable() {
  if (const char* env = std::getenv("METAPLAST_EXECUTABLE"); env && *env) return env;
  if (fs::exists(METAPLAST_BUILD_EXECUTABLE)) return METAPLAST_BUILD_EXECUTABLE;
  return util::find_program("metaplast").value_or(fs::path());
}

campaign::RunOptions run_options(const std::optional<std::string>& station, std::size_t jobs,
                                 bool yes, const py::object& settings, bool record, bool quiet) {
  campaign::RunOptions options;
  if (station) options.station_file = *station;
  options.command_line = "python: metaplast campaign";
  options.log_to_stderr = !quiet;
  options.record_frames = record;
  options.jobs = jobs;
  options.yes = yes;
  if (!settings.is_none()) {
    options.board_settings =
        instruments::setting_values_from_json(to_json(settings, "settings"), "settings", "");
  }
  if (jobs > 1) {
    options.executable = metaplast_executable();
    if (options.executable.empty()) {
      throw std::invalid_argument(
          "jobs=" + std::to_string(jobs) +
          ": the units run as `metaplast campaign run-unit` processes, and no metaplast "
          "executable was found; set METAPLAST_EXECUTABLE or put metaplast on PATH");
    }
  }
  return options;
}

nlohmann::json outcome_json(const campaign::RunOutcome& outcome) {
  return {{"status", campaign::to_string(outcome.status)},
          {"message", outcome.message},
          {"dir", outcome.dir.string()},
          {"exit_code", outcome.exit_code()}};
}

py::object run_outcome(
    const std::function<campaign::RunOutcome(const campaign::Interrupts&)>& run) {
  BackgroundWork work(BackgroundWork::FirstInterrupt::stop);
  work.start([&] { return outcome_json(run({&work.stop_flag(), &work.abort_flag()})); });
  return work.wait(py::none());
}

py::object run_campaign(const py::object& given, const std::string& out,
                        const std::optional<std::string>& station, std::size_t jobs, bool yes,
                        const py::object& settings, bool record, bool quiet) {
  const campaign::Campaign c = campaign_of(given);
  campaign::RunOptions options = run_options(station, jobs, yes, settings, record, quiet);
  options.out_dir = out;
  return run_outcome([&](const campaign::Interrupts& interrupts) {
    campaign::RunOptions o = options;
    o.interrupts = interrupts;
    return campaign::run_campaign(c, o);
  });
}

py::object resume_campaign(const std::string& dir, const std::optional<std::string>& station,
                           std::size_t jobs, bool yes, const py::object& settings, bool record,
                           bool quiet) {
  const campaign::RunOptions options = run_options(station, jobs, yes, settings, record, quiet);
  return run_outcome([&](const campaign::Interrupts& interrupts) {
    campaign::RunOptions o = options;
    o.interrupts = interrupts;
    return campaign::resume_campaign(dir, o);
  });
}

}  // namespace

void bind_campaigns(py::module_& m) {
  m.def("characterize", &characterize, py::arg("progress") = py::none(),
        "characterize(progress=None, **options) -> dict\n\n`metaplast characterize` with its "
        "options as keyword arguments (out= is required; cells=, cycles=, device=, station=, "
        "read_voltage=, ...). Returns what it wrote: out, calibration (the file), chip, "
        "cells_measured, bad_cells, unformed_cells, plot. progress(report) gets {level, "
        "steps_done, steps_total} and {log: line}. Ctrl-C aborts after the batch in flight (the "
        "board goes safe; a characterisation is not resumable) and raises KeyboardInterrupt.");
  m.def("_check_campaign", &check_campaign, py::arg("campaign"), py::arg("station") = py::none());
  m.def("_run_campaign", &run_campaign, py::arg("campaign"), py::arg("out"),
        py::arg("station") = py::none(), py::arg("jobs") = 1, py::arg("yes") = false,
        py::arg("settings") = py::none(), py::arg("record") = false, py::arg("quiet") = true);
  m.def("_resume_campaign", &resume_campaign, py::arg("dir"), py::arg("station") = py::none(),
        py::arg("jobs") = 1, py::arg("yes") = false, py::arg("settings") = py::none(),
        py::arg("record") = false, py::arg("quiet") = true);
}

}  // namespace metaplast::python
