// Board settings by name (instruments/board_settings.hpp): one table for every field, JSON in and
// out with errors that name the JSON path, the station file's defaults, differences and the
// one-line form of the records.
#include <catch2/catch.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "instruments/board_settings.hpp"
#include "instruments/station_limits.hpp"

using namespace metaplast::instruments;
using nlohmann::json;

namespace {

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("the table names every field of BoardSettings once, and each writes its own field") {
  std::set<std::string> keys, options;
  for (const auto& f : setting_fields()) {
    keys.insert(f.key);
    options.insert(f.option);
    // Setting one field to a new value changes that field only.
    BoardSettings s;
    f.set(s, f.list ? SettingValue{0.9, 1.0} : SettingValue{f.get(s).at(0) + 1});
    for (const auto& other : setting_fields()) {
      INFO(f.key << " / " << other.key);
      CHECK((other.get(s) != other.get(BoardSettings{})) == (&other == &f));
    }
  }
  CHECK(keys.size() == setting_fields().size());
  CHECK(options.size() == setting_fields().size());
  CHECK(setting_fields().size() == 13);
  CHECK(find_setting("read_voltage_v")->option == std::string("--read-voltage"));
  CHECK(find_setting("no_such") == nullptr);
}

TEST_CASE("settings round-trip through their JSON record") {
  BoardSettings s;
  s.read_voltage_v = 0.25;
  s.set_pulse_width_ns = 150;
  s.tia_range = 1;
  s.watchdog_ms = 500;
  const json j = settings_to_json(s);
  CHECK(j.size() == setting_fields().size());
  CHECK(j["tia_range"].is_number_unsigned());
  const BoardSettings back = settings_from_json(j, "record.json", "/board_settings");
  CHECK(setting_differences(s, back).empty());
  const auto diff = setting_differences(BoardSettings{}, s);
  REQUIRE(diff.size() == 4);
  CHECK(diff[0] == "read_voltage_v: 0.2 V recorded, 0.25 V now");
  CHECK(settings_line(s).rfind("read_voltage_v=0.25 V, set_bl_voltage_v=1.2 V,", 0) == 0);
}

TEST_CASE("partial values apply over a base; bad values name their JSON path") {
  const auto values = setting_values_from_json(json{{"read_voltage_v", 0.15}, {"tia_range", 2}},
                                               "campaign.json", "/steps/0/board_settings");
  const BoardSettings s = with_values(BoardSettings{}, values);
  CHECK(s.read_voltage_v == 0.15);
  CHECK(s.tia_range == 2);
  CHECK(s.set_bl_voltage_v == BoardSettings{}.set_bl_voltage_v);

  const std::string where = "campaign.json", path = "/steps/0/board_settings";
  auto error = [&](const json& doc) {
    return message_of([&] { setting_values_from_json(doc, where, path); });
  };
  CHECK(error(json{{"read_voltag_v", 0.2}}) ==
        "campaign.json: /steps/0/board_settings/read_voltag_v is not a board setting (known: "
        "read_voltage_v, set_bl_voltage_v, set_pulse_width_ns, reset_sl_voltage_v, "
        "reset_wl_voltage_v, reset_pulse_width_ns, form_bl_voltage_v, form_wl_voltage_v, "
        "form_pulse_width_ns, tia_range, watchdog_ms, level_gate_voltages_v, level_targets_us)");
  CHECK_THAT(error(json{{"read_voltage_v", "0.2"}}),
             Catch::StartsWith("campaign.json: /steps/0/board_settings/read_voltage_v must be a "
                               "number, got \"0.2\""));
  CHECK_THAT(error(json{{"set_pulse_width_ns", -5}}),
             Catch::StartsWith("campaign.json: /steps/0/board_settings/set_pulse_width_ns must "
                               "be a number in 0 .."));
  CHECK_THAT(error(json{{"tia_range", 1.5}}),
             Catch::Contains("/steps/0/board_settings/tia_range must be a whole number, got 1.5"));
  CHECK_THAT(error(json{{"tia_range", 256}}), Catch::Contains("tia_range must be a number in 0 .. 255"));
  CHECK_THAT(error(json::array()), Catch::StartsWith("campaign.json: /steps/0/board_settings must "
                                                     "be an object"));
}

TEST_CASE("a station file's board_settings are its defaults; bad ones name the station file") {
  const Station station = station_from_json(
      json{{"station", "bench-A"}, {"board_settings", {{"read_voltage_v", 0.1}}}}, "bench.json");
  REQUIRE(station.board_settings.size() == 1);
  CHECK(station.board_settings.at("read_voltage_v") == SettingValue{0.1});
  // Written back with the station (a run directory's station.json).
  CHECK(to_json(station)["board_settings"] == json{{"read_voltage_v", 0.1}});
  CHECK(station_from_json(to_json(station), "station.json").board_settings ==
        station.board_settings);
  CHECK(message_of([] {
          station_from_json(json{{"board_settings", {{"form_width", 10}}}}, "bench.json");
        }).rfind("bench.json: /board_settings/form_width is not a board setting", 0) == 0);
}

TEST_CASE(
    "the level table is a pair of lists: JSON arrays, comma lists, 'board' for the board's own") {
  const std::string where = "station.json", path = "/board_settings";
  const auto values = setting_values_from_json(
      json{{"level_gate_voltages_v", {0.8, 0.95}}, {"level_targets_us", {30, 70}}}, where, path);
  BoardSettings s = with_values(BoardSettings{}, values);
  CHECK(s.level_gate_voltages_v == std::vector<double>{0.8, 0.95});
  CHECK(s.level_targets_us == std::vector<double>{30, 70});
  // Record and differences.
  const json j = settings_to_json(s);
  CHECK(j["level_gate_voltages_v"] == json{0.8, 0.95});
  CHECK(settings_to_json(BoardSettings{})["level_targets_us"] == json::array());
  CHECK(setting_differences(settings_from_json(j, "record.json", "/board_settings"), s).empty());
  const auto diff = setting_differences(BoardSettings{}, s);
  REQUIRE(diff.size() == 2);
  CHECK(diff[0] == "level_gate_voltages_v: the board's table recorded, 0.8, 0.95 V now");
  // Command line: parse_setting_text reads setting_arguments back exactly.
  const SettingField& gates = *find_setting("level_gate_voltages_v");
  CHECK(parse_setting_text(gates, "0.8,0.95", "--level-gates") == SettingValue{0.8, 0.95});
  CHECK(parse_setting_text(gates, "board", "--level-gates").empty());
  const auto args = setting_arguments({{"level_gate_voltages_v", {0.8, 0.95}},
                                       {"level_targets_us", {}},
                                       {"read_voltage_v", {0.25}}});
  CHECK(args == std::vector<std::string>{"--level-gates", "0.8,0.95", "--level-targets", "board",
                                         "--read-voltage", "0.25"});
  CHECK(parse_setting_text(*find_setting("read_voltage_v"), "0.25", "--read-voltage") ==
        SettingValue{0.25});
  // Errors name the origin and say what is expected.
  CHECK_THAT(message_of([&] { parse_setting_text(gates, "0.8;0.9", "--level-gates"); }),
             Catch::StartsWith("--level-gates: \"0.8;0.9\" is not a comma-separated list"));
  CHECK_THAT(message_of([&] { parse_setting_text(gates, "0.8,-1", "--level-gates"); }),
             Catch::StartsWith("--level-gates must be numbers in 0 .. 65 V, got -1"));
  CHECK_THAT(message_of([&] {
               parse_setting_text(*find_setting("read_voltage_v"), "0.2,0.3", "--read-voltage");
             }),
             Catch::StartsWith("--read-voltage: \"0.2,0.3\" is not a number"));
  CHECK_THAT(message_of([&] {
               setting_values_from_json(json{{"level_targets_us", 30}}, where, path);
             }),
             Catch::StartsWith("station.json: /board_settings/level_targets_us must be an array "
                               "of numbers"));
  CHECK_THAT(
      message_of([&] {
        setting_values_from_json(json{{"level_targets_us", std::vector<int>(16, 1)}}, where, path);
      }),
      Catch::Contains("lists 16 levels; a level table holds at most 15"));
}
