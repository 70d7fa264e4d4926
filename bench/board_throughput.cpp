// Board link throughput: whole-array read and a 1,000-cell program-and-verify against a
// metaplast-simboard process, over TCP loopback and over a pseudo-terminal (opened through the
// serial driver at 921600 baud; a pty moves bytes at memory speed whatever the baud setting,
// so the pty figures are the host+driver cost, not a UART's). Prints cells/s and bytes on the
// wire per cell against the protocol's payload minimum (docs/protocol.md section 7).
//
// usage: bench_board_throughput [--simboard PATH] [--repeats N] [--cells N]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "app/board/board_session.hpp"
#include "bench/support/simboard_process.hpp"
#include "instruments/array_board.hpp"

using namespace metaplast::instruments;

namespace {

using metaplast::bench::SimboardProcess;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::uint64_t wire_bytes(const ArrayBoard& b) {
  const auto s = b.link_stats();
  return s.bytes_written + s.bytes_read;
}

// The time the same bytes take on a real UART at `baud`, 8N1 (10 bits per byte).
double uart_ms(std::uint64_t bytes, int baud) { return bytes * 10.0 / baud * 1e3; }

void run(const char* label, const std::string& address, int repeats, std::size_t pv_cells,
         int baud) {
  ArrayBoard board(address);
  board.open();
  board.configure({});
  board.activate();
  const std::size_t cells = board.info().cells();

  std::vector<double> times;
  std::uint64_t bytes = 0;
  for (int i = 0; i < repeats; ++i) {
    const auto b0 = wire_bytes(board);
    const auto t0 = std::chrono::steady_clock::now();
    board.read_array();
    times.push_back(seconds_since(t0));
    bytes = wire_bytes(board) - b0;
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  const double per_cell = static_cast<double>(bytes) / cells;
  std::printf(
      "%-4s whole-array read : best %7.2f ms, median %7.2f ms, %9.0f cells/s, "
      "%.3f wire bytes/cell (minimum 2, ratio %.3f)\n",
      label, times.front() * 1e3, median * 1e3, cells / median, per_cell, per_cell / 2.0);
  if (baud > 0) {
    std::printf("     (the same %llu bytes need >= %.0f ms on a real %d-baud UART)\n",
                static_cast<unsigned long long>(bytes), uart_ms(bytes, baud), baud);
  }

  std::mt19937 rng(7);
  for (bool snapshot : {false, true}) {
    // Fresh cells for each run (the second run starts after the first's cells).
    std::vector<ProgramTarget> targets;
    const std::size_t first = snapshot ? pv_cells : 0;
    for (std::size_t i = first; i < first + pv_cells && i < cells; ++i) {
      targets.push_back({{static_cast<std::uint16_t>(i / 128), static_cast<std::uint16_t>(i % 128)},
                         static_cast<Level>(rng() % 9)});
    }
    ProgramOptions options;
    options.band_us = 4.0;
    options.max_attempts = 30;
    options.snapshot_counters = snapshot;
    const auto b0 = wire_bytes(board);
    const auto t0 = std::chrono::steady_clock::now();
    const auto report = board.program_and_verify(targets, options);
    const double t = seconds_since(t0);
    const auto pv_bytes = wire_bytes(board) - b0;
    const double pv_per_cell = static_cast<double>(pv_bytes) / pv_cells;
    std::uint64_t pulses = 0;
    for (const auto& c : report.cells) pulses += c.attempts;
    std::printf(
        "%-4s program-and-verify %zu cells%s: %7.2f ms, %8.0f cells/s, %llu pulses, "
        "%zu passed, %.3f wire bytes/cell (minimum 9, ratio %.3f)\n",
        label, pv_cells, snapshot ? " (+counter snapshot)" : "", t * 1e3, pv_cells / t,
        static_cast<unsigned long long>(pulses), report.passed(), pv_per_cell, pv_per_cell / 9.0);
    if (baud > 0) {
      std::printf("     (>= %.0f ms of wire time on a real %d-baud UART)\n",
                  uart_ms(static_cast<std::uint64_t>(pv_per_cell * pv_cells), baud), baud);
    }
  }
  board.close();
}

}  // namespace

int main(int argc, char** argv) {
  std::string simboard = METAPLAST_SIMBOARD_PATH;
  int repeats = 10;
  std::size_t pv_cells = 1000;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--simboard" && i + 1 < argc) {
      simboard = argv[++i];
    } else if (a == "--repeats" && i + 1 < argc) {
      repeats = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--cells" && i + 1 < argc) {
      pv_cells = static_cast<std::size_t>(std::atol(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--simboard PATH] [--repeats N] [--cells N]\n", argv[0]);
      return 2;
    }
  }
  try {
    metaplast::board::register_sim_scheme();
    {
      SimboardProcess tcp(simboard, {"--seed", "1", "--formed", "--tcp", "127.0.0.1:0"});
      std::printf("TCP loopback: %s\n", tcp.address.c_str());
      run("tcp", tcp.address, repeats, pv_cells, 0);
    }
    {
      SimboardProcess pty(simboard, {"--seed", "1", "--formed", "--pty", "--baud", "921600"});
      std::printf("pseudo-terminal (serial driver, 921600 baud 8N1 configured): %s\n",
                  pty.address.c_str());
      run("pty", pty.address, repeats, pv_cells, 921600);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_board_throughput: %s\n", e.what());
    return 1;
  }
  return 0;
}
