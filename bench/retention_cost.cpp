// Host and link cost of a retention measurement (app/bench/retention.hpp) against a
// metaplast-simboard process over TCP loopback: N cells read at P time points, each time point
// one batched read of every cell. Prints the time spent in board calls for the reads (the host
// and link cost the issue bounds: under 2 s for 1,000 cells x 20 points), apart from the time
// spent programming and waiting for the time points (the board's accelerated clock, --clock,
// makes the hours pass in about a second).
//
// usage: bench_retention_cost [--simboard PATH] [--cells N] [--points P] [--clock SCALE]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "app/bench/measurement.hpp"
#include "app/bench/retention.hpp"
#include "bench/support/simboard_process.hpp"

int main(int argc, char** argv) {
  std::string simboard = METAPLAST_SIMBOARD_PATH;
  std::size_t cells = 1000, points = 20;
  std::string clock = "3600";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--simboard"))
      simboard = argv[i + 1];
    else if (!std::strcmp(argv[i], "--cells"))
      cells = std::stoul(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--points"))
      points = std::stoul(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--clock"))
      clock = argv[i + 1];
  }
  metaplast::bench::SimboardProcess board(
      simboard, {"--tcp", "127.0.0.1:0", "--formed", "--seed", "1", "--clock", clock});
  metaplast::bench::RetentionOptions o;
  o.programming.cells = cells;
  o.points = points;
  o.start_s = 1;
  o.stop_s = 3600;
  metaplast::bench::RetentionMeasurement m(o);
  metaplast::bench::HarnessOptions h;
  h.session.device = board.address;
  h.session.yes = true;  // the simboard process this program started
  h.out = std::filesystem::temp_directory_path() /
          ("metaplast-retention-cost-" + std::to_string(::getpid()));
  h.log = [](const std::string&) {};
  h.progress_line = false;
  const auto t0 = std::chrono::steady_clock::now();
  const auto outcome = metaplast::bench::run_measurement(m, h);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::filesystem::remove_all(h.out);
  std::printf("retention over TCP: %zu cells x %zu time points (1 s .. 1 h, clock x%s)\n", cells,
              points, clock.c_str());
  std::printf("  reads (host + link, board clock stamps included): %.3f s  (%.1f ms per point)\n",
              m.board_seconds(), 1e3 * m.board_seconds() / static_cast<double>(points));
  std::printf("  whole measurement (programming, waits, files): %.2f s wall, status %s\n", wall,
              outcome.record.status.c_str());
  return m.board_seconds() < 2.0 ? 0 : 1;
}
