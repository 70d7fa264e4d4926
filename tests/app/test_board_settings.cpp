// Pulse and read conditions as parameters (docs/bench.md "Pulse and read conditions"): the
// metaplast binary takes them from the command line over the station file's board_settings over
// the built-in defaults; a value outside the station limits is refused before a byte reaches the
// board (a listening TCP socket stands for the board and must never see a connection); one
// outside the board's limits is refused before CONFIGURE; `board config` prints the settings in
// force and where each comes from; a characterisation records them in calibration.json and in
// its CSV files' headers.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/app/support/process.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using metaplast::test::read_file;
using metaplast::test::spawn;
using metaplast::test::wait_exit;

namespace {

const std::string kBinary = METAPLAST_BINARY_DIR "/bin/metaplast";

fs::path scratch(const std::string& name) {
  return metaplast::test::scratch_path("metaplast-board-settings", name);
}

struct Result {
  int status;
  std::string output;
};

Result run(std::vector<std::string> args) {
  static int n = 0;
  const fs::path log = scratch("run-" + std::to_string(++n) + ".log");
  args.insert(args.begin(), kBinary);
  const int status = wait_exit(spawn(kBinary, args, log));
  Result r{status, read_file(log)};
  fs::remove(log);
  return r;
}

// A TCP socket listening on loopback that nobody serves: a connection attempt would be queued
// and show up in accept().
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 4) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  std::string address() const { return "tcp:127.0.0.1:" + std::to_string(port_); }
  bool was_connected() const {
    const int c = ::accept(fd_, nullptr, nullptr);
    if (c >= 0) ::close(c);
    return c >= 0;
  }

 private:
  int fd_ = -1;
  unsigned short port_ = 0;
};

fs::path write_station(const std::string& name, const json& doc) {
  const fs::path path = scratch(name);
  std::ofstream(path) << doc.dump();
  return path;
}

}  // namespace

TEST_CASE("a setting outside the station limits is refused before a byte reaches the board",
          "[board_settings]") {
  SilentListener board;
  const fs::path out = scratch("refused-characterization");
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"board", "read", "--device", board.address(), "--out", scratch("map.csv").string(),
            "--read-voltage", "0.5"},
           {"board", "config", "--device", board.address(), "--form-bl-voltage", "4"},
           {"board", "program", "--device", board.address(), "--yes", "--targets",
            scratch("none.csv").string(), "--reset-sl-voltage", "2.6"},
           {"characterize", "--device", board.address(), "--yes", "--out", out.string(),
            "--set-width", "20000"}}) {
    const Result r = run(args);
    INFO(r.output);
    CHECK(r.status != 0);
    CHECK_THAT(r.output, Catch::Contains("exceeds the station limit"));
    CHECK_FALSE(board.was_connected());
  }
  CHECK_FALSE(fs::exists(out));

  // The station's own defaults are checked against its limits the same way.
  const fs::path station =
      write_station("tight.json", {{"station", "tight"},
                                   {"instruments",
                                    {{"array", {{"type", "array-board"},
                                                {"address", board.address()}}}}},
                                   {"limits", {{"max_read_voltage_v", 0.15}}},
                                   {"board_settings", {{"read_voltage_v", 0.18}}}});
  const Result r = run({"board", "config", "--station", station.string()});
  INFO(r.output);
  CHECK(r.status != 0);
  CHECK_THAT(r.output, Catch::Contains("read_voltage_v = 0.18 exceeds the station limit "
                                       "max_read_voltage_v = 0.15 (tight)"));
  CHECK_FALSE(board.was_connected());
}

TEST_CASE("bad setting values on the command line are refused with the option's name",
          "[board_settings]") {
  const Result r = run({"board", "config", "--device", "sim:?seed=1", "--tia-range", "1.5"});
  CHECK(r.status != 0);
  CHECK_THAT(r.output, Catch::Contains("--tia-range must be a whole number, got 1.5"));
  // Beyond what the board offers (3 TIA ranges): the board's limits, before CONFIGURE.
  const Result beyond = run({"board", "config", "--device", "sim:?seed=1", "--tia-range", "9"});
  CHECK(beyond.status != 0);
  CHECK_THAT(beyond.output, Catch::Contains("tia_range = 9 but the board has 3 TIA ranges"));
}

TEST_CASE("board config: command line over station over built-in, read back from the board",
          "[board_settings]") {
  const fs::path station = write_station(
      "bench.json",
      {{"station", "bench-B"},
       {"instruments", {{"array", {{"type", "array-board"}, {"address", "sim:?seed=3"}}}}},
       {"board_settings", {{"read_voltage_v", 0.15}, {"set_pulse_width_ns", 120}}}});
  const Result r =
      run({"board", "config", "--station", station.string(), "--set-width", "150"});
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("station limits: bench-B"));
  CHECK_THAT(r.output, Catch::Matches("(.|\\n)*read_voltage_v +0.15 V +station (.|\\n)*"));
  CHECK_THAT(r.output,
             Catch::Matches("(.|\\n)*set_pulse_width_ns +150 ns +command line (.|\\n)*"));
  CHECK_THAT(r.output, Catch::Matches("(.|\\n)*reset_sl_voltage_v +1.5 V +built-in (.|\\n)*"));
  CHECK_THAT(r.output, Catch::Contains("the board reports the same configuration"));

  const Result j =
      run({"board", "config", "--station", station.string(), "--set-width", "150", "--json"});
  REQUIRE(j.status == 0);
  const json settings = json::parse(j.output);
  CHECK(settings["read_voltage_v"] == 0.15);
  CHECK(settings["set_pulse_width_ns"] == 150.0);
  CHECK(settings["tia_range"] == 0);
}

TEST_CASE("a characterisation records the settings in force", "[board_settings]") {
  const fs::path station = write_station(
      "characterize.json", {{"station", "bench-C"}, {"board_settings", {{"read_voltage_v", 0.15}}}});
  const fs::path out = scratch("characterization");
  const Result r = run({"characterize", "--device", "sim:?seed=5&formed=1", "--station",
                        station.string(), "--cells", "40", "--cycles", "2", "--read-repeats", "0",
                        "--no-registry", "--reset-width", "200", "--out", out.string()});
  INFO(r.output);
  REQUIRE(r.status == 0);
  const json calibration = json::parse(read_file(out / "calibration.json"));
  const json& recorded = calibration["characterization"]["board_settings"];
  CHECK(recorded["read_voltage_v"] == 0.15);
  CHECK(recorded["reset_pulse_width_ns"] == 200.0);
  CHECK(recorded["set_pulse_width_ns"] == 100.0);
  CHECK(calibration["read"]["voltage_v"] == 0.15);
  for (const char* csv : {"cdf.csv", "samples.csv"}) {
    const std::string text = read_file(out / csv);
    INFO(csv);
    CHECK(text.rfind("# board settings: read_voltage_v=0.15 V, ", 0) == 0);
    CHECK_THAT(text, Catch::Contains("reset_pulse_width_ns=200 ns"));
  }
  fs::remove_all(out);
}

TEST_CASE("campaign steps take board settings over the station's, and record.json keeps them",
          "[board_settings][campaign]") {
  const fs::path station = write_station(
      "campaign-station.json",
      {{"station", "bench-D"},
       {"instruments", {{"array", {{"type", "array-board"}, {"address", "sim:?seed=4&formed=1"}}}}},
       {"board_settings", {{"read_voltage_v", 0.15}, {"set_pulse_width_ns", 120}}}});
  json campaign = {{"campaign", "settings"},
                   {"steps",
                    {{{"id", "char"},
                      {"type", "characterize"},
                      {"cells", 30},
                      {"cycles", 2},
                      {"read-repeats", 0},
                      {"board-settings", {{"read_voltage_v", 0.18}}}},
                     {{"id", "train"},
                      {"type", "train"},
                      {"tasks", {"mnist"}},
                      {"epochs", 1},
                      {"train-limit", 300},
                      {"hidden", {8}},
                      {"threads", 1},
                      {"placement", "ideal,board"},
                      {"board-settings", {{"reset_pulse_width_ns", 200}}}}}}};
  const fs::path file = scratch("settings-campaign.json");
  std::ofstream(file) << campaign.dump();
  const fs::path out = scratch("settings-run");
  const Result r = run({"campaign", "run", file.string(), "--station", station.string(), "--out",
                        out.string(), "--quiet"});
  INFO(r.output);
  REQUIRE(r.status == 0);
  const json record = json::parse(read_file(out / "record.json"));
  REQUIRE(record["boards"].size() >= 1);
  const json& char_settings = record["boards"][0]["board_settings"];
  CHECK(record["boards"][0]["step"] == "char");
  CHECK(char_settings["read_voltage_v"] == 0.18);       // the step's
  CHECK(char_settings["set_pulse_width_ns"] == 120.0);  // the station's
  const json state = json::parse(read_file(out / "state.json"));
  json train_settings;
  for (const auto& s : state["steps"]) {
    if (s["id"] == "train") train_settings = s["result"]["board_settings"];
  }
  CHECK(train_settings["read_voltage_v"] == 0.15);
  CHECK(train_settings["set_pulse_width_ns"] == 120.0);
  CHECK(train_settings["reset_pulse_width_ns"] == 200.0);

  // The command line over the step and the station, for every step, also in --jobs children;
  // beyond the station's limits it is refused before a run directory exists.
  fs::remove_all(out);
  const Result cli =
      run({"campaign", "run", file.string(), "--station", station.string(), "--out", out.string(),
           "--quiet", "--jobs", "2", "--reset-width", "300", "--read-voltage", "0.125"});
  INFO(cli.output);
  REQUIRE(cli.status == 0);
  const json record2 = json::parse(read_file(out / "record.json"));
  CHECK(record2["boards"][0]["board_settings"]["read_voltage_v"] == 0.125);
  CHECK(record2["boards"][0]["board_settings"]["reset_pulse_width_ns"] == 300.0);
  CHECK(record2["boards"][0]["board_settings"]["set_pulse_width_ns"] == 120.0);
  const json state2 = json::parse(read_file(out / "state.json"));  // alive through the loop
  for (const auto& s : state2["steps"]) {
    if (s["id"] == "train") {
      CHECK(s["result"]["board_settings"]["read_voltage_v"] == 0.125);
      CHECK(s["result"]["board_settings"]["reset_pulse_width_ns"] == 300.0);
    }
  }
  fs::remove_all(out);
  const fs::path limited = write_station(
      "campaign-station-limited.json",
      {{"station", "bench-E"},
       {"instruments", {{"array", {{"type", "array-board"}, {"address", "sim:?seed=4&formed=1"}}}}},
       {"limits", {{"max_read_voltage_v", 0.3}}}});
  const Result over = run({"campaign", "run", file.string(), "--station", limited.string(), "--out",
                           out.string(), "--read-voltage", "0.4"});
  CHECK(over.status != 0);
  CHECK_THAT(over.output, Catch::Contains("0.4") && Catch::Contains("0.3"));
  CHECK_FALSE(fs::exists(out));

  // A malformed setting in a step names its JSON path; nothing runs.
  campaign["steps"][1]["board-settings"] = {{"reset_width", 200}};
  std::ofstream(file) << campaign.dump();
  const Result bad = run({"campaign", "check", file.string()});
  CHECK(bad.status != 0);
  CHECK_THAT(bad.output, Catch::Contains("/steps/1/board-settings/reset_width is not a board "
                                         "setting"));
  fs::remove_all(out);
}
