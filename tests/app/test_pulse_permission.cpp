// The one safety rule (app/board/board_session.hpp, docs/campaigns.md "Permission to pulse"):
// every command and campaign step that pulses cells of a board that is not an in-process sim:
// board refuses to start without --yes or the station's "allow_pulses": true, and names the
// resolved board. A metaplast-simboard on a pseudo-terminal stands for a real chip on a serial
// port: the host cannot tell it from one. The board's own counters prove that a refusal sent no
// pulse, and that --yes or the station key lets the pulses through.
#include <signal.h>
#include <sys/wait.h>

#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "app/board/board_session.hpp"
#include "app/campaign/campaign.hpp"
#include "app/cli/commands.hpp"
#include "app/runner/runner.hpp"
#include "instruments/array_board.hpp"
#include "tests/app/support/process.hpp"
#include "tests/app/support/simboard_process.hpp"

using namespace metaplast;
namespace fs = std::filesystem;

namespace {

const std::string kSimboard = METAPLAST_BINARY_DIR "/bin/metaplast-simboard";

fs::path scratch(const std::string& name) {
  return metaplast::test::scratch_path("metaplast-pulse-permission", name);
}

// metaplast-simboard --pty: a formed simulated chip behind a serial:/dev/pts/N address.
class PtyBoard {
 public:
  PtyBoard()
      : process_(metaplast::test::SimboardProcess::Link::pty, scratch("simboard.log"),
                 {"--formed", "--seed", "4"}) {}
  const std::string& address() const { return process_.address(); }

  // Every pulse the chip has seen (SET + RESET + FORM), read over the link as any host would.
  std::uint64_t pulses() const {
    std::uint64_t n = 0;
    for (const auto& c : process_.counters()) n += c.set_pulses + c.reset_pulses + c.form_pulses;
    return n;
  }

 private:
  metaplast::test::SimboardProcess process_;
};

// `metaplast <args>` through the real command registration, in this process.
void metaplast_cli(const std::vector<std::string>& args) {
  CLI::App app;
  app.require_subcommand(1);
  cli::add_board_commands(app);
  cli::add_characterize_command(app);
  cli::add_train_command(app);
  cli::add_campaign_command(app);
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  app.parse(reversed);
}

// The message of the refusal of `args`, "" if it was not refused.
std::string refusal(const std::vector<std::string>& args) {
  try {
    metaplast_cli(args);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

fs::path write_station(const std::string& name, const std::string& address, bool allow) {
  const fs::path file = scratch(name);
  std::ofstream(file) << R"({"station": "bench", "chip": "PTY-1",)"
                      << (allow ? R"("allow_pulses": true,)" : "")
                      << R"("instruments": {"array": {"type": "array-board", "address": ")"
                      << address << R"("}}})";
  return file;
}

// Level `level` on cells (0,0)..(0,3), the others left alone.
fs::path write_targets(const std::string& name, int level = 1) {
  const fs::path file = scratch(name);
  std::ofstream f(file);
  for (int r = 0; r < 128; ++r) {
    for (int c = 0; c < 128; ++c) f << (c ? "," : "") << (r == 0 && c < 4 ? level : -1);
    f << "\n";
  }
  return file;
}

fs::path write_campaign(const std::string& name, const std::string& device) {
  const fs::path file = scratch(name);
  std::ofstream(file) << R"({"campaign": "p", "steps": [{"id": "char", "type": "characterize",)"
                      << R"("device": ")" << device << R"(", "cells": 4, "cycles": 2,)"
                      << R"("read-repeats": 0}]})";
  return file;
}

}  // namespace

TEST_CASE("every pulsing command refuses a board that is not simulated, and sends it no pulse",
          "[board][safety]") {
  REQUIRE(fs::exists(kSimboard));
  PtyBoard board;
  const std::string& a = board.address();
  const std::uint64_t before = board.pulses();
  const fs::path targets = write_targets("targets.csv");
  const fs::path out = scratch("out");
  const std::vector<std::vector<std::string>> commands = {
      {"board", "form", "--device", a},
      {"board", "program", "--device", a, "--targets", targets.string()},
      {"board", "replay", scratch("none.jsonl").string(), "--device", a},
      {"characterize", "--device", a, "--cells", "4", "--cycles", "2", "--out", out.string()},
      {"train", "--device", a, "--placement", "ideal,board", "--hidden", "8", "--out",
       out.string()},
      {"campaign", "run", write_campaign("c.json", a).string(), "--out", out.string()},
  };
  for (const auto& args : commands) {
    INFO(args[0] + " " + args[1]);
    const std::string message = refusal(args);
    CHECK_THAT(message, Catch::Contains("refused") && Catch::Contains(a) &&
                            Catch::Contains("--yes") && Catch::Contains("allow_pulses"));
  }
  CHECK_FALSE(fs::exists(out));  // nothing started
  CHECK(board.pulses() == before);

  // Read-only commands need no permission; selftest runs its read-only checks only.
  CHECK_NOTHROW(metaplast_cli({"board", "info", "--device", a}));
  CHECK_NOTHROW(metaplast_cli({"board", "selftest", "--device", a}));
  CHECK_NOTHROW(
      metaplast_cli({"board", "counters", "--device", a, "--out", scratch("n.csv").string()}));
  CHECK(board.pulses() == before);
}

TEST_CASE("a station-file board: the refusal names its resolved address", "[board][safety]") {
  PtyBoard board;
  const fs::path station = write_station("station.json", board.address(), false);
  const std::string message = refusal({"board", "form", "--station", station.string()});
  CHECK_THAT(message, Catch::Contains("board at " + board.address() + ",") &&
                          Catch::Contains(station.string()));
  const fs::path run = scratch("run");
  const std::string step = refusal({"campaign", "run", write_campaign("s.json", "").string(),
                                    "--station", station.string(), "--out", run.string()});
  CHECK_THAT(step, Catch::Contains("campaign step \"char\"") && Catch::Contains(board.address()));
  CHECK_FALSE(fs::exists(run));
}

TEST_CASE("--yes or the station's allow_pulses lets the pulses through", "[board][safety]") {
  PtyBoard board;
  const fs::path targets = write_targets("targets.csv");
  const std::uint64_t start = board.pulses();
  metaplast_cli(
      {"board", "program", "--device", board.address(), "--targets", targets.string(), "--yes"});
  const std::uint64_t after_program = board.pulses();
  CHECK(after_program > start);
  // With --yes, selftest runs its RESET checks too.
  metaplast_cli({"board", "selftest", "--device", board.address(), "--yes"});
  const std::uint64_t after_yes = board.pulses();
  CHECK(after_yes > after_program);

  const fs::path station = write_station("allow.json", board.address(), true);
  metaplast_cli({"board", "program", "--station", station.string(), "--targets",
                 write_targets("level5.csv", 5).string()});
  CHECK(board.pulses() > after_yes);
}

TEST_CASE("a campaign's permission: every board step, before anything runs", "[campaign][safety]") {
  const auto plan = campaign::parse_campaign_text(R"({"campaign": "c", "steps": [
      {"id": "sim", "type": "characterize", "device": "sim:?seed=2"},
      {"id": "tcp", "type": "train", "placement": "board", "device": "tcp:127.0.0.1:5"},
      {"id": "soft", "type": "train", "device": "tcp:127.0.0.1:6"}]})",
                                                  "c.json");
  instruments::Station station;
  CHECK_THROWS_WITH(campaign::require_pulse_permission(plan.steps, station, false),
                    Catch::Contains("campaign step \"tcp\" (train)") &&
                        Catch::Contains("tcp:127.0.0.1:5") && Catch::Contains("not a simulated"));
  CHECK_NOTHROW(campaign::require_pulse_permission(plan.steps, station, true));
  station.allow_pulses = true;
  CHECK_NOTHROW(campaign::require_pulse_permission(plan.steps, station, false));
  // A step without a board layer pulses nothing, whatever its device.
  CHECK_NOTHROW(campaign::require_pulse_permission({plan.steps[0], plan.steps[2]},
                                                   instruments::Station{}, false));
}
