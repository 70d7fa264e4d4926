// The time a real bench takes (docs/campaigns.md, "Board time"):
//   1. the projection of the paper's Fig. 5a (the 15 repeats of campaigns/paper.json): device
//      operations, board time, link time and the whole bench time over a 921,600-baud UART and
//      over TCP, under the stated level-change model (or --pilot DIR's statistics);
//   2. the estimate against a measurement: a short board-store training (784-20-10, every layer
//      on the board) run against a metaplast-simboard process in its realistic-link mode, which
//      holds every reply for the time its request takes on a real board over the UART. The
//      estimate is made from a shorter pilot run (other seeds, half the images, in-process board)
//      plus the host's own time, measured by the same training against the simboard without the
//      realistic link. Prints estimated and measured wall-clock time and their ratio.
// A benchmark that prints figures, not a test.
//
// usage: bench_board_time [--simboard PATH] [--pilot DIR] [--train-limit N] [--no-run]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "app/campaign/campaign.hpp"
#include "app/hil/board_time_estimate.hpp"
#include "app/hil/training_run.hpp"
#include "app/learning/dataset.hpp"
#include "app/util/progress.hpp"
#include "bench/support/simboard_process.hpp"
#include "instruments/array_board.hpp"

namespace fs = std::filesystem;
using namespace metaplast;

namespace {

using Clock = std::chrono::steady_clock;

std::string duration(double seconds) { return util::format_duration(seconds); }

void print_fig5a(const hil::LevelChangeModel& model) {
  auto paper = campaign::load_campaign(METAPLAST_SOURCE_DIR "/campaigns/paper.json");
  campaign::estimate_board_time(paper, model);
  const campaign::EstimateTotals t = campaign::estimate_totals(paper, "fig5a");
  const double board_s = t.device_seconds, uart_s = t.link_seconds_uart;
  const double tcp_s = t.link_seconds_tcp, host_s = t.host_seconds;
  std::printf("Fig. 5a of campaigns/paper.json: %zu repeats, level changes from the %s\n",
              t.board_steps, model.source.c_str());
  std::printf("  %.3g device operations, board time %s, host time ~%s\n", t.device_operations,
              duration(board_s).c_str(), duration(host_s).c_str());
  std::printf("  921,600-baud UART: link %s, bench time %s (board + link + host)\n",
              duration(uart_s).c_str(), duration(board_s + uart_s + host_s).c_str());
  std::printf("  TCP (100 Mbit/s, 100 us a request): link %s, bench time %s\n",
              duration(tcp_s).c_str(), duration(board_s + tcp_s + host_s).c_str());
}

learning::TrainConfig whole_net_on_board(std::size_t train_limit, std::uint64_t seed) {
  learning::TrainConfig c;
  c.tasks = {"mnist", "fashion"};
  c.epochs = 1;
  c.hidden = {20};
  c.train_limit = train_limit;
  c.threads = 2;
  c.seed = seed;
  c.placement = "board";
  c.data_dir = learning::default_data_dir();
  return c;
}

struct TimedRun {
  double seconds = 0;
  nlohmann::json final_accuracy;
};

// Trains `c` into a fresh folder under `base` (with a chip registry of its own, so that no run
// avoids the bad cells another found).
TimedRun timed_run(learning::TrainConfig c, const fs::path& base, const std::string& name) {
  c.chips_dir = base / ("chips-" + name);
  const auto start = Clock::now();
  const auto summary = hil::run_training(c, base / name, false);
  return {std::chrono::duration<double>(Clock::now() - start).count(), summary["final"]};
}

double uptime_s(const std::string& address) {
  instruments::ArrayBoard board(address);
  board.open();
  const double seconds = board.uptime_ms() * 1e-3;
  board.close();
  return seconds;
}

void compare_with_realistic_link(const std::string& simboard, std::size_t train_limit) {
  const fs::path base =
      fs::temp_directory_path() / ("metaplast-bench-board-time-" + std::to_string(::getpid()));
  fs::remove_all(base);
  fs::create_directories(base);

  // The pilot: half the images, other seeds, the in-process board.
  learning::TrainConfig pilot = whole_net_on_board(train_limit / 2, 2);
  pilot.device = "sim:?formed=1&seed=12";
  timed_run(pilot, base, "pilot");
  const hil::LevelChangeModel model = hil::level_change_model_from_run(base / "pilot");
  const learning::TrainConfig run = whole_net_on_board(train_limit, 1);
  const hil::BoardWork work = hil::estimate_board_training(hil::board_training_shape(run), model);
  const double board_link_s =
      (work.board_ns + work.link_ns(devices::LinkModel::uart(devices::TimingModel{}.baud))) * 1e-9;

  // The host's own time: the same run against a simboard that answers at once.
  TimedRun plain, realistic;
  double plain_clock_s = 0, device_clock_s = 0;
  {
    bench::SimboardProcess board(simboard, {"--tcp", "127.0.0.1:0", "--formed", "--seed", "11"});
    learning::TrainConfig c = run;
    c.device = board.address;
    plain = timed_run(c, base, "plain");
    plain_clock_s = uptime_s(board.address);
  }
  {
    bench::SimboardProcess board(
        simboard, {"--tcp", "127.0.0.1:0", "--formed", "--seed", "11", "--realistic-link"});
    learning::TrainConfig c = run;
    c.device = board.address;
    realistic = timed_run(c, base, "realistic");
    device_clock_s = uptime_s(board.address);
  }
  // The same estimate from the measured run's own statistics: what is left is the timing model's
  // error, not the pilot's.
  const hil::BoardWork own = hil::estimate_board_training(
      hil::board_training_shape(run), hil::level_change_model_from_run(base / "realistic"));
  const double own_board_link_s =
      (own.board_ns + own.link_ns(devices::LinkModel::uart(devices::TimingModel{}.baud))) * 1e-9;
  fs::remove_all(base);
  const double host_s = plain.seconds, measured_s = realistic.seconds;

  const double estimated_s = host_s + board_link_s;
  std::printf(
      "\nshort board-store training against metaplast-simboard --realistic-link (784-20-10 on "
      "the board, mnist + fashion, 1 epoch of %zu images each; UART at 921,600 baud)\n",
      train_limit);
  std::printf(
      "  pilot (%zu images, other seeds): per step %.5f of the devices change in the first "
      "epoch, %.5f later; %.2f and %.2f pulses per write, %.2f at the initial programming\n",
      train_limit / 2, model.first_epoch.changed_fraction, model.later_epochs.changed_fraction,
      model.first_epoch.pulses_per_write, model.later_epochs.pulses_per_write,
      model.initial_pulses_per_write);
  std::printf(
      "  estimate: %.0f requests, %.0f bytes, %.3g device operations; board %.2f s + "
      "link %.2f s, simulated device clock %.2f s\n",
      work.requests, work.bytes, work.operations(), work.board_ns * 1e-9,
      work.link_ns(devices::LinkModel::uart()) * 1e-9,
      work.sim_clock_ns(devices::TimingModel{}) * 1e-9);
  std::printf(
      "  device clock (GET_STATUS uptime) of the realistic run %.2f s, of the plain run "
      "%.2f s; final accuracies %s (%s without the realistic link)\n",
      device_clock_s, plain_clock_s, realistic.final_accuracy.dump().c_str(),
      realistic.final_accuracy == plain.final_accuracy ? "the same" : "NOT the same");
  std::printf("  host time (same run, no link delays): %.2f s\n", host_s);
  std::printf("  estimated wall-clock %.2f s (host + board + link), measured %.2f s: ratio %.3f\n",
              estimated_s, measured_s, estimated_s / measured_s);
  std::printf(
      "  board + link alone: estimated %.2f s, measured %.2f s (realistic - host): "
      "ratio %.3f\n",
      board_link_s, measured_s - host_s, board_link_s / (measured_s - host_s));
  std::printf(
      "  from the measured run's own statistics: board + link %.2f s (ratio %.3f), simulated "
      "device clock %.2f s (ratio %.3f to the run's)\n",
      own_board_link_s, own_board_link_s / (measured_s - host_s),
      own.sim_clock_ns(devices::TimingModel{}) * 1e-9,
      own.sim_clock_ns(devices::TimingModel{}) * 1e-9 / device_clock_s);
}

}  // namespace

int main(int argc, char** argv) {
  std::string simboard = METAPLAST_SIMBOARD_PATH;
  std::string pilot;
  std::size_t train_limit = 2000;
  bool run = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--simboard" && has_value) {
      simboard = argv[++i];
    } else if (a == "--pilot" && has_value) {
      pilot = argv[++i];
    } else if (a == "--train-limit" && has_value) {
      train_limit = std::strtoul(argv[++i], nullptr, 10);
    } else if (a == "--no-run") {
      run = false;
    } else {
      std::fprintf(stderr,
                   "usage: bench_board_time [--simboard PATH] [--pilot DIR] [--train-limit N] "
                   "[--no-run]\n");
      return 2;
    }
  }
  if (train_limit < 200) {
    std::fprintf(stderr, "bench_board_time: --train-limit must be at least 200\n");
    return 2;
  }
  try {
    print_fig5a(pilot.empty() ? hil::stated_level_change_model()
                              : hil::level_change_model_from_run(pilot));
    if (run) compare_with_realistic_link(simboard, train_limit);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_board_time: %s\n", e.what());
    return 1;
  }
  return 0;
}
