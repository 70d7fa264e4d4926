// Hybrid training throughput (samples/s of the training steps, evaluation excluded) through the
// weight stores, against the ideal store: the output layer on the in-process simulated board and
// on a metaplast-simboard process over TCP loopback, hidden layers ideal or virtual. Prints the
// time ratio to the ideal path (target: at most 1.5x).
//
// usage: bench_hil_throughput [--simboard PATH] [--train-limit N] [--hidden A,B] [--threads T]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "app/learning/dataset.hpp"
#include "app/learning/trainer.hpp"
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
  const auto summary = metaplast::learning::run_training(c, dir, false);
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
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--simboard" && has_value) {
      simboard = argv[++i];
    } else if (a == "--train-limit" && has_value) {
      c.train_limit = std::stoul(argv[++i]);
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
                   "usage: %s [--simboard PATH] [--train-limit N] [--hidden A,B] [--threads T]\n",
                   argv[0]);
      return 2;
    }
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
    std::string cmd = simboard + " --write-default-calibration " + calibration.string();
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "cannot write the default calibration with %s\n", simboard.c_str());
      return 1;
    }
  }
  c.calibration = calibration;
  std::printf("MNIST, %zu training images, 1 epoch, %d threads, layers 784", c.train_limit,
              c.threads);
  for (auto h : c.hidden) std::printf("-%zu", h);
  std::printf("-10\n");

  const double ideal = samples_per_second(c, "ideal", "", "ideal");
  std::printf("%-44s %9.0f samples/s  (reference)\n", "ideal store (calibrated levels)", ideal);
  auto report = [&](const char* label, double rate) {
    std::printf("%-44s %9.0f samples/s  time ratio to ideal %.2fx\n", label, rate, ideal / rate);
  };
  report("virtual hidden layers, ideal output",
         samples_per_second(c, virtual_ideal, "", "virtual"));
  report("output on in-process board, hidden ideal",
         samples_per_second(c, ideal_board, "sim:?formed=1", "board-ideal"));
  report("output on in-process board, hidden virtual",
         samples_per_second(c, virtual_board, "sim:?formed=1", "board-virtual"));
  {
    SimboardProcess tcp(simboard, {"--seed", "1", "--formed", "--tcp", "127.0.0.1:0"});
    report("output on TCP simboard, hidden ideal",
           samples_per_second(c, ideal_board, tcp.address, "tcp-ideal"));
  }
  {
    SimboardProcess tcp(simboard, {"--seed", "1", "--formed", "--tcp", "127.0.0.1:0"});
    report("output on TCP simboard, hidden virtual",
           samples_per_second(c, virtual_board, tcp.address, "tcp-virtual"));
  }
  fs::remove(calibration);
  return 0;
}
