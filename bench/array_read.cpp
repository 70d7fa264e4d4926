// The whole-array read as the command line does it (ArrayBoard::read_array, what `metaplast board
// read` calls before writing its CSV), timed: the reference of bench/python_read.py, which runs
// this program and the Python module's Board.read() side by side against the same board.
//
// usage: bench_array_read --device ADDRESS [--repeats N]
// Prints one line: "cpp read_array: median S s, min S s over N reads".
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "app/board/board_session.hpp"

int main(int argc, char** argv) {
  std::string device;
  int repeats = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--device") {
      device = argv[i + 1];
    } else if (flag == "--repeats") {
      repeats = std::max(1, std::atoi(argv[i + 1]));
    } else {
      std::fprintf(stderr, "bench_array_read: unknown option %s\n", flag.c_str());
      return 2;
    }
  }
  if (device.empty()) {
    std::fprintf(stderr, "usage: bench_array_read --device ADDRESS [--repeats N]\n");
    return 2;
  }
  try {
    metaplast::board::SessionOptions options;
    options.device = device;
    auto board = metaplast::board::open_active_board(options);
    board->read_array();  // warm-up: the first read pays the connection's start
    std::vector<double> seconds;
    for (int r = 0; r < repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      const auto map = board->read_array();
      seconds.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      if (map.conductance_us.size() != board->info().cells())
        throw std::runtime_error("short read");
    }
    std::sort(seconds.begin(), seconds.end());
    std::printf("cpp read_array: median %.6f s, min %.6f s over %d reads\n",
                seconds[seconds.size() / 2], seconds.front(), repeats);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_array_read: %s\n", e.what());
    return 1;
  }
  return 0;
}
