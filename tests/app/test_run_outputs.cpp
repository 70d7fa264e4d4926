// The end-of-run outputs (endurance.csv/.gp/.png, memory.json, the report's files): board pulses,
// virtual pulses and ideal level changes kept apart; on a full disk one error naming the file,
// no .tmp left behind and no empty or truncated file that looks finished.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "app/hil/endurance_report.hpp"
#include "app/hil/memory_report.hpp"
#include "app/report/report.hpp"
#include "tests/app/support/full_disk.hpp"
#include "tests/app/support/process.hpp"

namespace fs = std::filesystem;
using metaplast::test::temporaries;
using metaplast::test::with_file_size_limit;
using nlohmann::json;

namespace {

fs::path scratch(const std::string& name) {
  return metaplast::test::scratch_path("metaplast-run-outputs", name);
}

std::vector<metaplast::hil::DeviceWrites> hybrid_writes() {
  return {{"board", std::vector<std::uint32_t>(5120, 3)},
          {"virtual", std::vector<std::uint32_t>(20000, 40)}};
}

}  // namespace

TEST_CASE("the endurance report keeps board cells and virtual devices apart") {
  const fs::path dir = scratch("split");
  fs::create_directories(dir);
  auto sources = hybrid_writes();
  sources[0].per_device[7] = 9;
  const json summary = metaplast::hil::write_endurance_report(dir, sources);
  CHECK(summary["board"]["devices"] == 5120);
  CHECK(summary["board"]["max"] == 9);
  CHECK(summary["virtual"]["devices"] == 20000);
  CHECK(summary["virtual"]["max"] == 40);
  CHECK_THAT(summary["board"]["unit"].get<std::string>(), Catch::Contains("pulses on board cells"));
  CHECK_THAT(summary["virtual"]["unit"].get<std::string>(), Catch::Contains("virtual devices"));
  CHECK_FALSE(summary.contains("devices"));  // no total over both kinds

  const std::string csv = metaplast::test::read_file(dir / "endurance.csv");
  CHECK_THAT(csv, Catch::StartsWith("source,bin_from,bin_to,devices,percent\n"));
  CHECK_THAT(csv, Catch::Contains("\nboard,") && Catch::Contains("\nvirtual,"));
  CHECK(fs::file_size(dir / "endurance.png") > 1000);
  fs::remove_all(dir);

  // Ideal layers have no devices: their counts are level changes, never called pulses.
  CHECK_THAT(metaplast::hil::endurance_unit("ideal"),
             Catch::Contains("level changes") && !Catch::Contains("pulse"));
}

TEST_CASE("a full disk at the end of a run: one error naming the file, nothing half-written") {
  const fs::path dir = scratch("full");
  fs::create_directories(dir);
  const std::string endurance = with_file_size_limit(
      64, [&] { metaplast::hil::write_endurance_report(dir, hybrid_writes()); });
  CHECK_THAT(endurance, Catch::Contains((dir / "endurance.csv").string()));
  CHECK_FALSE(fs::exists(dir / "endurance.csv"));

  const std::string memory = with_file_size_limit(64, [&] {
    metaplast::hil::write_memory_report(dir, {784, 64, 10}, 0);
  });
  CHECK_THAT(memory, Catch::Contains((dir / "memory.json").string()));
  CHECK_FALSE(fs::exists(dir / "memory.json"));

  // Room for endurance.csv and .gp but not for the picture: the PNG is removed, not left cut.
  const std::string plot = with_file_size_limit(
      4096, [&] { metaplast::hil::write_endurance_report(dir, hybrid_writes()); });
  CHECK(plot.empty());  // gnuplot failing is a warning: the CSV holds the data
  CHECK(fs::exists(dir / "endurance.csv"));
  CHECK_FALSE(fs::exists(dir / "endurance.png"));

  // The report: a metrics.csv to plot; nothing fits.
  std::ofstream(dir / "metrics.csv") << "task_trained,epoch,task_evaluated,split,accuracy,loss\n"
                                        "mnist,1,mnist,test,0.9,0.3\n";
  const std::string report =
      with_file_size_limit(16, [&] { metaplast::report::write_report(dir); });
  CHECK_THAT(report, Catch::Contains("report"));
  CHECK_THAT(report,
             Catch::Contains(".dat") || Catch::Contains(".gp") || Catch::Contains("index.html"));
  CHECK_FALSE(fs::exists(dir / "report" / "index.html"));
  for (const auto& e : fs::directory_iterator(dir / "report")) {
    INFO(e.path());
    CHECK(fs::file_size(e.path()) > 0);
  }
  CHECK(temporaries(dir).empty());
  fs::remove_all(dir);
}
