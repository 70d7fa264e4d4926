// Station limits: file parsing (defaults, overrides, errors that name the key) and the host-side
// checks of settings and pulses.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "instruments/array_board.hpp"
#include "instruments/station_limits.hpp"

using namespace metaplast::instruments;

namespace {

std::filesystem::path write_temp(const std::string& name, const std::string& text) {
  auto path = std::filesystem::temp_directory_path() / name;
  std::ofstream(path) << text;
  return path;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a station file overrides only the limits it names") {
  auto path = write_temp("metaplast_station_ok.json",
                         R"({"station":"bench-A","limits":{"max_bl_voltage_v":2.0,
                             "max_pulses_per_verify":7}})");
  const auto limits = load_station_limits(path);
  CHECK(limits.station_name == "bench-A");
  CHECK(limits.max_bl_voltage_v == 2.0);
  CHECK(limits.max_pulses_per_verify == 7);
  CHECK(limits.max_sl_voltage_v == StationLimits::defaults().max_sl_voltage_v);
  // Round trip through to_json keeps everything.
  const auto again = station_limits_from_json(to_json(limits), "round trip");
  CHECK(again.max_bl_voltage_v == 2.0);
  CHECK(again.max_pulses_per_verify == 7);
  std::filesystem::remove(path);
}

TEST_CASE("a mistyped or bad station limit is an error naming the key and the file") {
  auto typo = write_temp("metaplast_station_typo.json", R"({"limits":{"max_bl_volts":2.0}})");
  const auto m1 = message_of([&] { load_station_limits(typo); });
  CHECK(m1.find("/limits/max_bl_volts") != std::string::npos);
  CHECK(m1.find(typo.string()) != std::string::npos);

  auto negative = write_temp("metaplast_station_neg.json", R"({"limits":{"max_sl_voltage_v":-1}})");
  CHECK(message_of([&] { load_station_limits(negative); }).find("max_sl_voltage_v") !=
        std::string::npos);
  CHECK_THROWS_AS(load_station_limits(negative), std::invalid_argument);

  auto not_json = write_temp("metaplast_station_bad.json", "{limits: oops");
  CHECK_THROWS_AS(load_station_limits(not_json), std::runtime_error);
  CHECK_THROWS_AS(load_station_limits("/nonexistent/station.json"), std::runtime_error);
  for (const auto& p : {typo, negative, not_json}) std::filesystem::remove(p);
}

TEST_CASE("settings beyond the station limits are refused with the limit's name") {
  StationLimits limits;
  limits.max_bl_voltage_v = 2.0;
  BoardSettings settings;
  settings.form_bl_voltage_v = 1.9;
  settings.set_bl_voltage_v = 1.2;
  CHECK_NOTHROW(check_station_limits(settings, limits));
  settings.form_bl_voltage_v = 3.6;
  const auto msg = message_of([&] { check_station_limits(settings, limits); });
  CHECK(msg.find("form_bl_voltage_v") != std::string::npos);
  CHECK(msg.find("max_bl_voltage_v") != std::string::npos);
  CHECK_THROWS_AS(check_station_limits(settings, limits), LimitError);

  PulseSpec pulse{1.0, 1.0, 50.0};
  CHECK_NOTHROW(check_station_limits(pulse, limits));
  pulse.pulse_width_ns = 1e6;
  CHECK_THROWS_AS(check_station_limits(pulse, limits), LimitError);
  pulse.pulse_width_ns = -5;
  CHECK_THROWS_AS(check_station_limits(pulse, limits), LimitError);
}

TEST_CASE("a full station file gives its instruments, chip and limits") {
  auto path = write_temp("metaplast_station_full.json", R"({
      "station": "probe-2", "chip": "W12-D07",
      "instruments": {
        "array": {"type": "array-board", "address": "tcp:127.0.0.1:5025", "model": "rev B"},
        "smu": {"type": "smu", "address": "serial:/dev/ttyUSB1?baud=115200"}
      },
      "limits": {"max_pulse_width_ns": 500}})");
  const Station station = load_station(path);
  CHECK(station.name == "probe-2");
  CHECK(station.chip == "W12-D07");
  REQUIRE(station.instruments.size() == 2);
  REQUIRE(station.array_board() != nullptr);
  CHECK(station.array_board()->name == "array");
  CHECK(station.array_board()->address == "tcp:127.0.0.1:5025");
  CHECK(station.limits.max_pulse_width_ns == 500);
  CHECK(station.limits.station_name == "probe-2");
  // The limits-only reader accepts the whole file too (board commands use it).
  CHECK(load_station_limits(path).max_pulse_width_ns == 500);
  // Round trip.
  const Station again = station_from_json(to_json(station), "round trip");
  CHECK(again.chip == "W12-D07");
  CHECK(again.array_board()->address == "tcp:127.0.0.1:5025");
  CHECK(again.instruments.size() == 2);

  // --device wins; without it the station's board is used.
  CHECK(resolve_board_address("sim:?seed=2", path) == "sim:?seed=2");
  CHECK(resolve_board_address("", path) == "tcp:127.0.0.1:5025");
  std::filesystem::remove(path);
}

TEST_CASE("allow_pulses and chips_dir: off and unset by default, kept in a run's copy") {
  CHECK_FALSE(station_from_text(R"({"station": "s"})", "/lab/s.json").allow_pulses);
  CHECK(station_from_text(R"({"station": "s"})", "/lab/s.json").chips_dir.empty());
  const Station station = station_from_text(
      R"({"station": "s", "allow_pulses": true, "chips_dir": "chips"})", "/lab/bench/s.json");
  CHECK(station.allow_pulses);
  CHECK(station.chips_dir == "/lab/bench/chips");  // relative to the station file's folder
  const Station copy = station_from_json(to_json(station), "/runs/r/station.json");
  CHECK(copy.allow_pulses);
  CHECK(copy.chips_dir == "/lab/bench/chips");
  CHECK_FALSE(station_from_json(to_json(Station{}), "x").allow_pulses);
}

TEST_CASE("no board address anywhere is an error saying to give --device or a station board") {
  const auto none = message_of([] { resolve_board_address("", std::nullopt); });
  CHECK_THAT(none, Catch::Contains("--device") && Catch::Contains("--station"));
  auto path = write_temp("metaplast_station_noboard.json",
                         R"({"instruments": {"smu": {"type": "smu", "address": "tcp:h:1"}}})");
  const auto no_board = message_of([&] { resolve_board_address("", path); });
  CHECK_THAT(no_board, Catch::Contains(path.string()) && Catch::Contains("array-board") &&
                           Catch::Contains("--device"));
  std::filesystem::remove(path);
}

TEST_CASE("every malformed station file names the file, the JSON path and what was expected") {
  struct Case {
    const char* text;
    const char* path;
    const char* expected;
  };
  const Case cases[] = {
      {R"([1, 2])", "JSON object", "\"instruments\""},
      {R"({"stations": "x"})", "/stations", "not a known key"},
      {R"({"station": 3})", "/station", "must be a string"},
      {R"({"chip": "../etc"})", "/chip", "[A-Za-z0-9._-]"},
      {R"({"chip": ""})", "/chip", "1..64"},
      {R"({"allow_pulses": "yes"})", "/allow_pulses", "must be true or false"},
      {R"({"allow_pulses": 1})", "/allow_pulses", "must be true or false"},
      {R"({"chips_dir": 3})", "/chips_dir", "must be a string"},
      {R"({"chips_dir": ""})", "/chips_dir", "must name a folder"},
      {R"({"instruments": []})", "/instruments", "must be an object"},
      {R"({"instruments": {"a": "tcp:h:1"}})", "/instruments/a", "must be an object"},
      {R"({"instruments": {"a": {"type": "oscilloscope", "address": "tcp:h:1"}}})",
       "/instruments/a/type", "array-board, smu"},
      {R"({"instruments": {"a": {"type": "smu", "address": "gpib:5"}}})", "/instruments/a/address",
       "sim:, tcp: or serial:"},
      {R"({"instruments": {"a": {"type": "smu"}}})", "/instruments/a/address", "missing"},
      {R"({"instruments": {"a": {"address": "sim:"}}})", "/instruments/a/type", "missing"},
      {R"({"instruments": {"a": {"type": "smu", "address": "sim:", "port": 1}}})",
       "/instruments/a/port", "not a known key"},
      {R"({"instruments": {"a": {"type": "array-board", "address": "sim:"},
                           "b": {"type": "array-board", "address": "sim:?seed=2"}}})",
       "/instruments", "more than one \"array-board\""},
      {R"({"limits": []})", "/limits", "must be an object"},
      {R"({"limits": {"max_pulse_width_ns": "fast"}})", "/limits/max_pulse_width_ns",
       "must be a number"},
      {R"({"limits": {"max_compliance_ua": 0}})", "/limits/max_compliance_ua", "must be > 0"},
      {R"({"limits": {"max_pulses_per_verify": 2.5}})", "/limits/max_pulses_per_verify", "integer"},
  };
  for (const auto& c : cases) {
    auto path = write_temp("metaplast_station_case.json", c.text);
    const auto message = message_of([&] { load_station(path); });
    INFO(c.text);
    CHECK_THAT(message, Catch::Contains(path.string()) && Catch::Contains(c.path) &&
                            Catch::Contains(c.expected));
    CHECK_THROWS_AS(load_station(path), std::invalid_argument);
    std::filesystem::remove(path);
  }
}
