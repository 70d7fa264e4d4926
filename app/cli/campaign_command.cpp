// `metaplast campaign check|run|resume`: scripted campaigns (docs/campaigns.md) with run
// records (docs/run-records.md), crash-safe resume and Ctrl-C handling.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>

#include "app/campaign/campaign.hpp"
#include "app/runner/runner.hpp"
#include "app/cli/commands.hpp"
#include "app/cli/interrupt.hpp"
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
  bool quiet = false, record = false;
};

void finish(const campaign::RunOutcome& outcome) {
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
      "campaign", "Scripted campaigns: check a campaign file, run it, resume an interrupted run");
  cmd->require_subcommand(1);
  auto a = std::make_shared<CampaignArgs>();
  const std::string invocation = command_line();

  auto* check = cmd->add_subcommand(
      "check", "Validate a campaign file and print the dry-run plan (no hardware is touched)");
  check->add_option("FILE", a->file, "Campaign file (JSON, docs/campaigns.md)")->required();
  check->add_option("--station", a->station, "Station file to validate with it");
  check->callback([a] {
    const auto c = campaign::load_campaign(a->file);
    if (!a->station.empty()) {
      const auto station = instruments::load_station(a->station);
      const auto* board = station.array_board();
      std::printf("station \"%s\" OK: chip %s, board %s\n", station.name.c_str(),
                  station.chip.empty() ? "(not given)" : station.chip.c_str(),
                  board ? board->address.c_str() : "(none)");
    }
    std::printf("%s", campaign::format_plan(c).c_str());
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
  run->callback([a, invocation] {
    const auto c = campaign::load_campaign(a->file);
    campaign::RunOptions options;
    options.out_dir = a->out.empty() ? fs::path(timestamped_dir(c.name)) : fs::path(a->out);
    if (!a->station.empty()) options.station_file = a->station;
    options.command_line = invocation;
    options.log_to_stderr = !a->quiet;
    options.record_frames = a->record;
    InterruptHandler handler;
    options.interrupts = {&InterruptHandler::stop_requested(),
                          &InterruptHandler::abort_requested()};
    std::printf("campaign %s: %zu steps into %s\n", c.name.c_str(), c.steps.size(),
                options.out_dir.string().c_str());
    std::fflush(stdout);
    finish(campaign::run_campaign(c, options));
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
  resume->callback([a, invocation] {
    campaign::RunOptions options;
    if (!a->station.empty()) options.station_file = a->station;
    options.command_line = invocation;
    options.log_to_stderr = !a->quiet;
    options.record_frames = a->record;
    InterruptHandler handler;
    options.interrupts = {&InterruptHandler::stop_requested(),
                          &InterruptHandler::abort_requested()};
    finish(campaign::resume_campaign(a->dir, options));
  });
}

}  // namespace metaplast::cli
