// The remaining --out files of the commands (`board read`, `board counters`, `train --repeat`'s
// repeat_summary.json/.csv) on a full disk: one error naming the file, no .tmp left behind, no
// truncated file that looks finished.
#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "app/cli/commands.hpp"
#include "app/hil/pipeline.hpp"
#include "tests/app/support/full_disk.hpp"
#include "tests/app/support/process.hpp"

namespace fs = std::filesystem;
using metaplast::test::temporaries;
using metaplast::test::with_file_size_limit;

namespace {

fs::path scratch(const std::string& name) {
  const fs::path dir = metaplast::test::scratch_path("metaplast-command-outputs", name);
  fs::create_directories(dir);
  return dir;
}

// `metaplast board <args>` in this process.
void board(const std::string& args) {
  CLI::App app;
  app.require_subcommand(1);
  metaplast::cli::add_board_commands(app);
  app.parse("board " + args, false);
}

}  // namespace

TEST_CASE("board read and board counters on a full disk: an error naming the --out file") {
  const fs::path dir = scratch("board");
  for (const std::string command : {"read", "counters"}) {
    INFO(command);
    const fs::path out = dir / (command + ".csv");
    const std::string error = with_file_size_limit(
        4096, [&] { board(command + " --device sim:?seed=1&formed=1 --out " + out.string()); });
    CHECK_THAT(error, Catch::Contains(out.string()));
    CHECK_FALSE(fs::exists(out));
  }
  CHECK(temporaries(dir).empty());
  // A folder that is not there: refused before the board is read.
  CHECK_THROWS_WITH(board("read --device sim:?seed=1&formed=1 --out " +
                          (dir / "no-such-folder" / "map.csv").string()),
                    Catch::Contains("no folder") && Catch::Contains("no-such-folder"));
  fs::remove_all(dir);
}

TEST_CASE("repeat_summary.json/.csv on a full disk: an error naming the file, nothing cut") {
  const fs::path dir = scratch("repeat");
  // Two finished repetitions (their summary.json there: reused, not trained again).
  for (const std::string seed : {"1", "2"}) {
    const fs::path run = dir / ("seed-" + seed);
    fs::create_directories(run);
    std::ofstream(run / "metrics.csv") << "task_trained,epoch,task_evaluated,split,accuracy,loss\n"
                                          "mnist,1,mnist,test,0.9"
                                       << seed << ",0.3\n";
    std::ofstream(run / "summary.json") << R"({"after_task": {"mnist": {"mnist": 0.9}}})";
  }
  metaplast::learning::TrainConfig config;
  config.tasks = {"mnist"};
  config.seed = 1;
  const std::string error =
      with_file_size_limit(64, [&] { metaplast::hil::run_repetitions(config, dir, 2); });
  CHECK_THAT(error, Catch::Contains((dir / "repeat_summary.json").string()));
  CHECK_FALSE(fs::exists(dir / "repeat_summary.json"));
  CHECK_FALSE(fs::exists(dir / "repeat_summary.csv"));
  CHECK(temporaries(dir).empty());

  // With room: both files whole.
  metaplast::hil::run_repetitions(config, dir, 2);
  const std::string csv = metaplast::test::read_file(dir / "repeat_summary.csv");
  CHECK_THAT(csv,
             Catch::StartsWith("task_trained,epoch,task_evaluated,split,mean,std,n,min,max\n"));
  CHECK_THAT(csv, Catch::Contains("\nmnist,1,mnist,test,"));
  fs::remove_all(dir);
}
