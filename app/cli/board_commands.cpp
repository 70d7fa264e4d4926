// `metaplast board info|config|read|form|program|counters|selftest|replay`: the array board from
// the command line. Every command takes --device ADDRESS, --station FILE (host limits) and
// --record FILE (every frame both ways, JSON lines; see instruments/frame_recorder.hpp).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <stdexcept>

#include "app/board/board_session.hpp"
#include "app/cli/board_options.hpp"
#include "app/cli/commands.hpp"
#include "app/util/csv.hpp"
#include "app/util/progress.hpp"
#include "common/atomic_file.hpp"
#include "instruments/board_selftest.hpp"
#include "instruments/session_replay.hpp"

namespace metaplast::cli {

namespace {

namespace in = metaplast::instruments;

struct CommonOptions {
  std::string device;
  std::string station;
  std::string record;
  bool yes = false;  // only commands that pulse take --yes (add_yes)
  in::SettingValues settings;  // only commands that configure the board take them (add_settings)
  board::SessionOptions session() const {
    board::SessionOptions s;
    s.yes = yes;
    s.settings = settings;
    s.device = device;
    if (!station.empty()) s.station = station;
    if (!record.empty()) s.record = record;
    return s;
  }
};

void add_common(CLI::App* cmd, CommonOptions& o) {
  cmd->add_option("--device", o.device,
                  "Board address: serial:/dev/ttyUSB0?baud=921600, tcp:HOST:PORT or sim:?seed=1 "
                  "(default: the station file's array-board)");
  cmd->add_option("--station", o.station,
                  "Station file (JSON, see docs/campaigns.md): instruments, chip, limits; "
                  "default: built-in conservative limits");
  cmd->add_option("--record", o.record, "Record every frame both ways to FILE (JSON lines)");
}

// The board settings options (commands that configure the board).
void add_settings(CLI::App* cmd, CommonOptions& o) { add_board_settings_options(cmd, o.settings); }

// --yes: permission to pulse a board that is not simulated (board::require_pulse_permission).
void add_yes(CLI::App* cmd, CommonOptions& o, const std::string& names = "--yes") {
  cmd->add_flag(names, o.yes,
                "Allow pulses on a board that is not an in-process sim: board (or set "
                "\"allow_pulses\": true in the station file)");
}

// "  label done/total (pp%)  ETA 12 s" on a terminal; nothing otherwise.
in::ProgressCallback terminal_progress(const std::string& label) {
  auto line = std::make_shared<util::ProgressLine>();
  if (!line->enabled()) return {};
  return [label, line](std::size_t done, std::size_t total) {
    line->show_count("  " + label, done, total);
  };
}

// Before the board is read: an --out in a folder that is not there fails at once.
void check_output_folder(const std::string& path) {
  const auto folder = std::filesystem::absolute(path).parent_path();
  if (!std::filesystem::is_directory(folder)) {
    throw std::runtime_error("cannot write " + path + ": no folder " + folder.string() +
                             " (create it or choose another --out)");
  }
}

// An --out file, written whole (common/atomic_file.hpp): an error names it, nothing half-written.
void write_output(const std::string& path, const std::string& text) {
  common::write_file_atomically(path, text);
}

// The level table (I_CC table) in force, one line per level.
void print_levels(const in::BoardInfo& info) {
  for (std::size_t i = 0; i < info.levels.size(); ++i) {
    const auto& l = info.levels[i];
    std::printf("level %-10zu I_CC %5.1f uA  gate %.3f V  target %7.2f uS%s\n", i, l.icc_ua,
                l.gate_voltage_v, l.target_conductance_us, i == 0 ? "  (LCS)" : "");
  }
}

void print_info(const in::BoardInfo& info, const in::StationLimits& limits) {
  std::printf("model            %s\nserial           %s\nfirmware         %s\n", info.model.c_str(),
              info.serial.c_str(), info.firmware_version.c_str());
  std::printf("protocol         %u\narray            %u x %u\nADC / DAC bits   %u / %u\n",
              info.protocol_version, info.rows, info.cols, info.adc_bits, info.dac_bits);
  std::printf("boot id          %08x\ncapabilities     0x%02x%s%s%s%s%s%s%s\n", info.boot_id,
              info.capability_flags,
              info.has(protocols::capability::kProgramVerify) ? " PROGRAM_VERIFY" : "",
              info.has(protocols::capability::kTrace) ? " TRACE" : "",
              info.has(protocols::capability::kCounters) ? " COUNTERS" : "",
              info.has(protocols::capability::kWatchdog) ? " WATCHDOG" : "",
              info.has(protocols::capability::kBatchStatus) ? " BATCH_STATUS" : "",
              info.has(protocols::capability::kExplicitSet) ? " EXPLICIT_SET" : "",
              info.has(protocols::capability::kLevelTable) ? " LEVEL_TABLE" : "");
  std::printf("max payload      %zu bytes\n", info.max_payload_bytes);
  for (std::size_t i = 0; i < info.tia_ranges.size(); ++i) {
    const auto& t = info.tia_ranges[i];
    std::printf("TIA range %zu      full scale %.1f uA, %.4f nA/code, zero %u\n", i,
                t.full_scale_ua, t.nanoamps_per_code, t.zero_code);
  }
  print_levels(info);
  const auto& b = info.limits;
  std::printf(
      "board limits     read %.3f..%.3f V, BL %.3f V, SL %.3f V, WL %.3f V, "
      "width %.0f..%.0f ns, %u attempts\n",
      b.read_voltage_min_v, b.read_voltage_max_v, b.max_bl_voltage_v, b.max_sl_voltage_v,
      b.max_wl_voltage_v, b.pulse_width_min_ns, b.pulse_width_max_ns, b.max_attempts);
  std::printf(
      "station limits   %s: read %.3f V, BL %.3f V, SL %.3f V, WL %.3f V, width %.0f ns, "
      "I_CC %.1f uA, %u pulses per verify\n",
      limits.station_name.c_str(), limits.max_read_voltage_v, limits.max_bl_voltage_v,
      limits.max_sl_voltage_v, limits.max_wl_voltage_v, limits.max_pulse_width_ns,
      limits.max_compliance_ua, limits.max_pulses_per_verify);
}

// A rows x cols CSV of integers (level indices, -1 = leave alone).
std::vector<in::ProgramTarget> load_target_map(const std::string& path, std::uint16_t rows,
                                               std::uint16_t cols, std::size_t levels) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read the target-level map " + path);
  std::vector<in::ProgramTarget> targets;
  std::string line;
  std::uint16_t row = 0;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    if (row >= rows) {
      throw std::runtime_error(path + ":" + std::to_string(line_no) + ": more than " +
                               std::to_string(rows) + " rows");
    }
    std::stringstream fields(line);
    std::string field;
    std::uint16_t col = 0;
    while (std::getline(fields, field, ',')) {
      if (col >= cols) {
        throw std::runtime_error(path + ":" + std::to_string(line_no) + ": more than " +
                                 std::to_string(cols) + " columns");
      }
      long value = 0;
      try {
        std::size_t used = 0;
        value = std::stol(field, &used);
        if (field.find_first_not_of(" \t", used) != std::string::npos) throw std::exception();
      } catch (...) {
        throw std::runtime_error(path + ":" + std::to_string(line_no) + ", column " +
                                 std::to_string(col + 1) + ": '" + field +
                                 "' is not an integer level (-1 = leave alone)");
      }
      if (value < -1 || value >= static_cast<long>(levels)) {
        throw std::runtime_error(path + ":" + std::to_string(line_no) + ", column " +
                                 std::to_string(col + 1) + ": level " + std::to_string(value) +
                                 " is not in -1 .. " + std::to_string(levels - 1));
      }
      if (value >= 0) targets.push_back({{row, col}, static_cast<in::Level>(value)});
      ++col;
    }
    if (col != cols) {
      throw std::runtime_error(path + ":" + std::to_string(line_no) + ": " + std::to_string(col) +
                               " columns, expected " + std::to_string(cols));
    }
    ++row;
  }
  if (row != rows) {
    throw std::runtime_error(path + ": " + std::to_string(row) + " rows, expected " +
                             std::to_string(rows) + " (a " + std::to_string(rows) + " x " +
                             std::to_string(cols) + " CSV of level indices)");
  }
  return targets;
}

void add_info_command(CLI::App* board_cmd) {
  auto* cmd = board_cmd->add_subcommand("info", "Identify the board and print its calibration");
  auto o = std::make_shared<CommonOptions>();
  add_common(cmd, *o);
  cmd->callback([o] {
    auto b = board::open_board(o->session());
    print_info(b->info(), b->station_limits());
    b->close();
  });
}

void add_read_command(CLI::App* board_cmd) {
  auto* cmd = board_cmd->add_subcommand("read", "Read the whole array: conductance map (uS) CSV");
  auto o = std::make_shared<CommonOptions>();
  auto out = std::make_shared<std::string>();
  add_common(cmd, *o);
  add_settings(cmd, *o);
  cmd->add_option("--out", *out, "Output CSV (rows x cols, uS)")->required();
  cmd->callback([o, out] {
    check_output_folder(*out);
    auto b = board::open_active_board(o->session());
    const auto map = b->read_array(terminal_progress("read"));
    std::ostringstream f;
    f << std::fixed << std::setprecision(3);
    for (std::uint16_t r = 0; r < map.rows; ++r) {
      for (std::uint16_t c = 0; c < map.cols; ++c) {
        f << (c ? "," : "") << map.conductance_us[std::size_t{r} * map.cols + c];
      }
      f << '\n';
    }
    b->close();
    write_output(*out, f.str());
    std::printf("wrote %u x %u conductance map (uS) to %s\n", map.rows, map.cols, out->c_str());
  });
}

void add_form_command(CLI::App* board_cmd) {
  auto* cmd = board_cmd->add_subcommand("form", "FORM every cell of the array (once per chip)");
  auto o = std::make_shared<CommonOptions>();
  add_common(cmd, *o);
  add_settings(cmd, *o);
  add_yes(cmd, *o);
  cmd->callback([o] {
    board::require_pulse_permission("board form", o->session());
    auto b = board::open_active_board(o->session());
    const auto& info = b->info();
    std::vector<in::Cell> cells;
    for (std::uint16_t r = 0; r < info.rows; ++r) {
      for (std::uint16_t c = 0; c < info.cols; ++c) cells.push_back({r, c});
    }
    b->form(cells);
    const auto map = b->read_array(terminal_progress("verify"));
    std::size_t formed = 0;
    const double threshold = info.levels[0].target_conductance_us * 0.2;
    for (double g : map.conductance_us) formed += g > threshold ? 1 : 0;
    b->close();
    std::printf("formed: %zu of %zu cells read above %.2f uS\n", formed, cells.size(), threshold);
  });
}

// "program-and-verify (board loop): 12 cells, 12 passed, 0 failed (0 not formed), 30 pulses"
void print_program_report(const in::ProgramReport& report) {
  std::uint64_t pulses = 0;
  std::size_t not_formed = 0;
  for (const auto& c : report.cells) {
    pulses += c.attempts;
    not_formed += c.not_formed ? 1 : 0;
  }
  std::printf(
      "program-and-verify (%s loop): %zu cells, %zu passed, %zu failed (%zu not formed), "
      "%llu pulses\n",
      report.used == in::VerifyImplementation::board ? "board" : "host", report.cells.size(),
      report.passed(), report.failed(), not_formed, static_cast<unsigned long long>(pulses));
}

void add_program_command(CLI::App* board_cmd) {
  auto* cmd = board_cmd->add_subcommand("program", "Program-and-verify a target-level map");
  auto o = std::make_shared<CommonOptions>();
  auto targets_file = std::make_shared<std::string>();
  auto options = std::make_shared<in::ProgramOptions>();
  auto impl = std::make_shared<std::string>("auto");
  add_common(cmd, *o);
  add_settings(cmd, *o);
  add_yes(cmd, *o);
  cmd->add_option("--targets", *targets_file,
                  "CSV rows x cols of level indices (0 = LCS, 1..8 HCS, -1 = leave alone)")
      ->required();
  cmd->add_option("--band-us", options->band_us, "Tolerance band half-width (uS)")
      ->capture_default_str();
  cmd->add_option("--max-attempts", options->max_attempts, "Pulses per cell at most")
      ->capture_default_str();
  cmd->add_option("--implementation", *impl, "auto, board (opcode) or host (host loop)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "board", "host"}));
  cmd->callback([o, targets_file, options, impl] {
    board::require_pulse_permission("board program", o->session());
    auto b = board::open_active_board(o->session());
    const auto& info = b->info();
    const auto targets = load_target_map(*targets_file, info.rows, info.cols, info.levels.size());
    auto opts = *options;
    opts.implementation = *impl == "board"  ? in::VerifyImplementation::board
                          : *impl == "host" ? in::VerifyImplementation::host
                                            : in::VerifyImplementation::automatic;
    opts.progress = terminal_progress("program");
    const auto report = b->program_and_verify(targets, opts);
    b->close();
    print_program_report(report);
  });
}

void add_counters_command(CLI::App* board_cmd) {
  auto* cmd = board_cmd->add_subcommand("counters", "Per-cell pulse counters to CSV");
  auto o = std::make_shared<CommonOptions>();
  auto out = std::make_shared<std::string>();
  add_common(cmd, *o);
  cmd->add_option("--out", *out, "Output CSV: row,col,set_pulses,reset_pulses,form_pulses")
      ->required();
  cmd->callback([o, out] {
    check_output_folder(*out);
    auto b = board::open_board(o->session());
    const auto counters = b->counters_array(terminal_progress("counters"));
    util::CsvWriter csv({"row", "col", "set_pulses", "reset_pulses", "form_pulses"});
    for (const auto& c : counters) {
      csv.integer(c.cell.row).integer(c.cell.col).integer(c.set_pulses);
      csv.integer(c.reset_pulses).integer(c.form_pulses).end_row();
    }
    b->close();
    write_output(*out, csv.str());
    std::printf("wrote counters of %zu cells to %s\n", counters.size(), out->c_str());
  });
}

void add_selftest_command(CLI::App* board_cmd) {
  auto* cmd = board_cmd->add_subcommand(
      "selftest", "Protocol conformance checks (docs/protocol.md) against any board");
  auto o = std::make_shared<CommonOptions>();
  add_common(cmd, *o);
  // Three checks send a RESET to cell 0,0 (instruments/board_selftest.hpp): without permission to
  // pulse they are skipped and the read-only checks run.
  add_yes(cmd, *o);
  cmd->callback([o] {
    in::SelftestOptions options;
    options.allow_pulses = board::pulses_permitted(o->session());
    auto b = board::open_board(o->session());
    const auto checks = in::run_selftest(*b, options);
    b->close();
    std::size_t failed = 0, skipped = 0;
    for (const auto& c : checks) {
      std::printf("%s  %s: %s\n",
                  c.skipped  ? "SKIP"
                  : c.passed ? "PASS"
                             : "FAIL",
                  c.name.c_str(), c.detail.c_str());
      failed += c.passed ? 0 : 1;
      skipped += c.skipped ? 1 : 0;
    }
    if (failed) {
      throw std::runtime_error("selftest: " + std::to_string(failed) + " of " +
                               std::to_string(checks.size()) + " checks failed");
    }
    if (skipped) {
      std::printf(
          "selftest: %zu checks passed, %zu not run: they pulse a cell of a board that is not "
          "simulated; add --yes (or \"allow_pulses\": true in the station file) to run them\n",
          checks.size() - skipped, skipped);
      return;
    }
    std::printf("selftest: all %zu checks passed\n", checks.size());
  });
}

// Where a setting's value comes from: "command line", "station" or "built-in".
std::string setting_source(const std::string& key, const board::SessionOptions& session,
                           const in::Station& station) {
  if (session.settings.count(key)) return "command line";
  if (station.board_settings.count(key)) return "station";
  return "built-in";
}

void add_config_command(CLI::App* board_cmd) {
  auto* cmd = board_cmd->add_subcommand(
      "config",
      "Print the board settings a command would use (built-in, station file, command line), "
      "checked against the station's and the board's limits and read back from the board");
  auto o = std::make_shared<CommonOptions>();
  auto as_json = std::make_shared<bool>(false);
  add_common(cmd, *o);
  add_settings(cmd, *o);
  cmd->add_flag("--json", *as_json, "Print the settings as one JSON object (key: value)");
  cmd->callback([o, as_json] {
    const auto session = o->session();
    const in::Station station =
        session.station ? in::load_station(*session.station) : in::Station{};
    const in::BoardSettings settings = board::session_settings(session);
    auto b = board::open_board(session);
    b->configure(settings);  // the board's limits; CONFIGURE is no pulse
    const protocols::Configuration reported = b->reported_configuration();
    const auto info = b->info();
    b->close();
    if (*as_json) {
      std::printf("%s\n", in::settings_to_json(settings).dump(2).c_str());
      return;
    }
    std::printf("board settings for %s (%s %s), station limits: %s\n",
                board::board_address(session).c_str(), info.model.c_str(), info.serial.c_str(),
                station.limits.station_name.c_str());
    for (const auto& f : in::setting_fields()) {
      std::printf("  %-22s %-12s %-13s %s\n", f.key, in::format_setting(f, f.get(settings)).c_str(),
                  setting_source(f.key, session, station).c_str(), f.meaning);
    }
    std::printf("level table in force (I_CC as the board derives it from each gate):\n");
    print_levels(info);
    const bool same = reported == in::to_wire(settings);
    std::printf("within the station's and the board's limits; the board reports %s\n",
                same ? "the same configuration (GET_CONFIGURATION)"
                     : "ANOTHER configuration (GET_CONFIGURATION): check its firmware");
    if (!same) throw std::runtime_error("board config: the board did not keep the settings sent");
  });
}

void add_replay_command(CLI::App* board_cmd) {
  auto* cmd = board_cmd->add_subcommand(
      "replay", "Send a recorded session's requests again and report differing responses");
  auto o = std::make_shared<CommonOptions>();
  auto file = std::make_shared<std::string>();
  cmd->add_option("FILE", *file, "Recording made with --record")->required();
  add_common(cmd, *o);
  add_yes(cmd, *o, "--yes,--allow-hardware");
  cmd->callback([o, file] {
    board::require_pulse_permission("board replay", o->session());
    const auto recording = in::load_recording(*file);
    auto b = board::open_board(o->session());
    const auto report = in::replay_session(recording, b->link(), b->station_limits());
    b->close();
    for (const auto& d : report.differences) {
      std::printf("DIFF request %zu %s: %s\n", d.request_index, d.opcode.c_str(), d.what.c_str());
      if (!d.expected_hex.empty()) std::printf("  recorded %s\n", d.expected_hex.c_str());
      if (!d.actual_hex.empty()) std::printf("  now      %s\n", d.actual_hex.c_str());
    }
    std::printf("replay: %zu requests, %zu sent, %zu identical, %zu differences, %zu skipped\n",
                report.requests, report.sent, report.matched, report.differences.size(),
                report.skipped);
    if (!report.ok()) {
      throw std::runtime_error("replay: " + std::to_string(report.differences.size()) +
                               " responses differ from the recording");
    }
  });
}

}  // namespace

void add_board_commands(CLI::App& root) {
  auto* board_cmd = root.add_subcommand("board", "Drive the 128 x 128 array test board");
  board_cmd->require_subcommand(1);
  add_info_command(board_cmd);
  add_config_command(board_cmd);
  add_read_command(board_cmd);
  add_form_command(board_cmd);
  add_program_command(board_cmd);
  add_counters_command(board_cmd);
  add_selftest_command(board_cmd);
  add_replay_command(board_cmd);
}

}  // namespace metaplast::cli
