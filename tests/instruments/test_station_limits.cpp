// Station limits: file parsing (defaults, overrides, errors that name the key) and the host-side
// checks of settings and pulses.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

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
