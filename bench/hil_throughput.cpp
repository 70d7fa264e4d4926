// Hybrid training throughput (samples/s of the training steps, evaluation excluded) through the
// weight stores, against the ideal store: the output layer on the in-process simulated board and
// on a metaplast-simboard process over TCP loopback, hidden layers ideal or virtual. Prints the
// time ratio to the ideal path (target: at most 1.5x).
//
// Every path runs R times (--repeats, default 3), interleaved in rotating order after one discarded
// warm-up run, so a busy moment or a cold cache does not land on one path; medians are compared.
//
// usage: bench_hil_throughput [--simboard PATH] [--train-limit N] [--hidden A,B] [--threads T]
//                             [--repeats R]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "app/hil/training_run.hpp"
#include "app/learning/dataset.hpp"
#include "app/learning/trainer.hpp"
#include "app/util/process.hpp"
#include "bench/support/simboard_process.hpp"

namespace fs = std::filesystem;
using metaplast::learning::TrainConfig;

namespace {

using metaplast::bench::SimboardProcess;

double samples_per_second(TrainConfig c, const std::string& placement, const std::string& device,
                          const std::string& name) {
  c.placement = placement;
  c.device = device;
  const fs::path dir = fs::temp_directory_path() /
                       ("metaplast-bench-hil-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(dir);
  const auto summary = metaplast::hil::run_training(c, dir, false);
  fs::remove_all(dir);
  return summary["samples_per_second"].get<double>();
}

}  // namespace

int main(int argc, char** argv) {
  std::string simboard = METAPLAST_SIMBOARD_PATH;
  TrainConfig c;
  c.tasks = {"mnist"};
  c.epochs = 1;
  c.train_limit = 10000;
  c.threads = 2;
  c.data_dir = metaplast::learning::default_data_dir();
  // Same (calibrated) levels for every placement, so only the store differs.
  c.calibration = "";
  int repeats = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--simboard" && has_value) {
      simboard = argv[++i];
    } else if (a == "--train-limit" && has_value) {
      c.train_limit = std::stoul(argv[++i]);
    } else if (a == "--repeats" && has_value) {
      repeats = std::stoi(argv[++i]);
    } else if (a == "--threads" && has_value) {
      c.threads = std::stoi(argv[++i]);
    } else if (a == "--hidden" && has_value) {
      c.hidden.clear();
      std::string list = argv[++i];
      for (std::size_t at = 0; at <= list.size();) {
        const std::size_t comma = std::min(list.find(',', at), list.size());
        c.hidden.push_back(std::stoul(list.substr(at, comma - at)));
        at = comma + 1;
      }
    } else {
      std::fprintf(stderr,
                   "usage: %s [--simboard PATH] [--train-limit N] [--hidden A,B] [--threads T] "
                   "[--repeats R]\n",
                   argv[0]);
      return 2;
    }
  }
  spdlog::set_level(spdlog::level::warn);  // the training runs' progress lines: not the figures
  if (repeats < 1) {
    std::fprintf(stderr, "--repeats must be at least 1 (got %d)\n", repeats);
    return 2;
  }
  const std::size_t layers = c.hidden.size() + 1;
  std::string ideal_board, virtual_ideal, virtual_board;
  for (std::size_t l = 0; l + 1 < layers; ++l) {
    ideal_board += "ideal,";
    virtual_ideal += "virtual,";
    virtual_board += "virtual,";
  }
  ideal_board += "board";
  virtual_ideal += "ideal";
  virtual_board += "board";
  // The ideal reference is given the calibration file too, so every placement quantizes to the
  // same calibrated levels Q_i.
  const fs::path calibration =
      fs::temp_directory_path() / ("metaplast-bench-hil-" + std::to_string(::getpid()) + ".json");
  {
    const auto r = metaplast::util::run_process(
        {simboard, "--write-default-calibration", calibration.string()});
    if (!r.ok()) {
      std::fprintf(stderr, "cannot write the default calibration with %s (%s): %s\n",
                   simboard.c_str(), r.describe().c_str(), r.err.c_str());
      return 1;
    }
  }
  c.calibration = calibration;
  std::printf("MNIST, %zu training images, 1 epoch, %d threads, layers 784", c.train_limit,
              c.threads);
  for (auto h : c.hidden) std::printf("-%zu", h);
  std::printf("-10; %d interleaved rounds after a discarded warm-up run\n", repeats);

  enum class Board { none, in_process, tcp };
  struct Path {
    const char* label;
    std::string placement;
    Board board;
    std::vector<double> rates;
  };
  std::vector<Path> paths{
      {"ideal store (calibrated levels)", "ideal", Board::none, {}},
      {"virtual hidden layers, ideal output", virtual_ideal, Board::none, {}},
      {"output on in-process board, hidden ideal", ideal_board, Board::in_process, {}},
      {"output on in-process board, hidden virtual", virtual_board, Board::in_process, {}},
      {"output on TCP simboard, hidden ideal", ideal_board, Board::tcp, {}},
      {"output on TCP simboard, hidden virtual", virtual_board, Board::tcp, {}},
  };
  auto run = [&](const Path& p, const std::string& name) {
    // A board path runs as `metaplast train --device` does, on the built-in calibration (the same
    // model as the file): a calibration file names its chip, and the simulated board's chip is
    // another one, which the run refuses.
    TrainConfig config = c;
    if (p.board != Board::none) config.calibration.clear();
    if (p.board == Board::tcp) {
      SimboardProcess tcp(simboard, {"--seed", "1", "--formed", "--tcp", "127.0.0.1:0"});
      return samples_per_second(config, p.placement, tcp.address, name);
    }
    return samples_per_second(config, p.placement,
                              p.board == Board::in_process ? "sim:?formed=1" : "", name);
  };
  run(paths[0], "warm-up");  // page cache, allocator, CPU clocks: not counted
  // Round r starts at path r (mod the count), so no path is always first or last.
  for (int r = 0; r < repeats; ++r) {
    for (std::size_t k = 0; k < paths.size(); ++k) {
      Path& p = paths[(k + static_cast<std::size_t>(r)) % paths.size()];
      const std::string name = "round" + std::to_string(r) + "-path" + std::to_string(k);
      p.rates.push_back(run(p, name));
      std::fprintf(stderr, "round %d/%d: %s %.0f samples/s\n", r + 1, repeats, p.label,
                   p.rates.back());
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  };
  const double ideal = median(paths[0].rates);
  std::printf("%-44s %9s %9s %9s  %s\n", "path", "median", "min", "max", "time ratio to ideal");
  for (const Path& p : paths) {
    const auto [lo, hi] = std::minmax_element(p.rates.begin(), p.rates.end());
    std::printf("%-44s %9.0f %9.0f %9.0f  ", p.label, median(p.rates), *lo, *hi);
    if (&p == &paths[0]) {
      std::printf("(reference, samples/s)\n");
    } else {
      std::printf("%.2fx\n", ideal / median(p.rates));
    }
  }
  fs::remove(calibration);
  return 0;
}
