#include "app/bench/measurement.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>

#include "app/hil/chip_registry.hpp"
#include "app/hil/live_training.hpp"
#include "app/hil/snapshot_h5.hpp"
#include "app/live/live_updates.hpp"
#include "app/util/progress.hpp"
#include "common/atomic_file.hpp"
#include "common/clock.hpp"
#include "common/json_file.hpp"
#include "instruments/board_settings.hpp"
#include "instruments/station_limits.hpp"

namespace metaplast::bench {

namespace fs = std::filesystem;
using nlohmann::json;

std::string board_line(const instruments::BoardInfo& info) {
  char boot[16];
  std::snprintf(boot, sizeof boot, "%08x", info.boot_id);
  return info.model + " " + info.serial + " (firmware " + info.firmware_version + ", protocol " +
         std::to_string(info.protocol_version) + ", boot " + boot + ", " +
         std::to_string(info.rows) + " x " + std::to_string(info.cols) + ")";
}

std::vector<std::string> csv_header_lines(const MeasurementRecord& record) {
  const std::string measurement = "measurement: " + record.kind + " " + record.options.dump() +
                                  ", started " + record.started + ", " + record.status;
  if (!record.source.is_null()) {
    return {"source: " + record.source.at("path").get<std::string>() + " (" +
                record.source.at("kind").get<std::string>() + ", sha256 " +
                record.source.at("sha256").get<std::string>() + ")",
            "chip: " + record.chip_id, measurement};
  }
  return {"board settings: " + instruments::settings_line(record.settings),
          "board: " + board_line(record.board), "chip: " + record.chip_id, measurement};
}

void write_cell_table(util::H5File& h5, const ProgrammedCells& programmed,
                      const std::string& verify_units) {
  const std::size_t n = programmed.cells.size();
  std::vector<std::uint32_t> index(n);
  std::vector<std::uint16_t> row(n), col(n);
  std::vector<std::int16_t> level(n);
  std::vector<double> verify(n);
  for (std::size_t c = 0; c < n; ++c) {
    const auto& p = programmed.cells[c];
    index[c] = static_cast<std::uint32_t>(c);
    row[c] = p.cell.row;
    col[c] = p.cell.col;
    level[c] = static_cast<std::int16_t>(p.level);
    verify[c] = p.verify_us;
  }
  h5.write_vector("cell", index, "index of the measured cell (row, col, level: cells/*)");
  h5.set_scale("cell", "cell");
  h5.write_vector("cells/row", row, "array row");
  h5.write_vector("cells/col", col, "array column");
  h5.write_vector("cells/level", level, "level index: 0 = LCS, 1..N = HCS by I_CC");
  h5.write_vector("cells/verify_us", verify, verify_units);
  for (const char* name : {"cells/row", "cells/col", "cells/level", "cells/verify_us"}) {
    h5.attach_scale(name, "cell", 0);
  }
}

void write_record_attributes(util::H5File& h5, const MeasurementRecord& r) {
  h5.string_attribute("/", "kind", r.kind);
  h5.string_attribute("/", "format", "metaplast measurement 1 (docs/bench.md, Measurements)");
  h5.string_attribute("/", "chip_id", r.chip_id);
  h5.string_attribute("/", "started", r.started);
  h5.string_attribute("/", "finished", r.finished);
  h5.string_attribute("/", "status", r.status);
  h5.string_attribute("/", "options", r.options.dump());
  if (!r.source.is_null()) {
    for (const char* key : {"path", "sha256", "kind"}) {
      h5.string_attribute("/", std::string("source_") + key, r.source.at(key).get<std::string>());
    }
    return;
  }
  h5.string_attribute("/", "board_model", r.board.model);
  h5.string_attribute("/", "board_serial", r.board.serial);
  h5.string_attribute("/", "board_firmware", r.board.firmware_version);
  h5.uint32_attribute("/", "board_boot_id", r.board.boot_id);
  hil::write_settings_attributes(h5, r.settings);
}

namespace {

// The board's identity and the level table in force (level 0 = LCS) as configured.
json board_json(const instruments::BoardInfo& info) {
  json levels = json::array();
  for (const auto& l : info.levels) {
    levels.push_back({{"icc_ua", l.icc_ua},
                      {"gate_voltage_v", l.gate_voltage_v},
                      {"target_us", l.target_conductance_us}});
  }
  return {{"model", info.model},
          {"serial", info.serial},
          {"firmware", info.firmware_version},
          {"protocol_version", info.protocol_version},
          {"boot_id", info.boot_id},
          {"rows", info.rows},
          {"cols", info.cols},
          {"levels", levels}};
}

json record_json(const MeasurementRecord& r, const json& result) {
  json j = {{"kind", r.kind},       {"options", r.options},   {"chip_id", r.chip_id},
            {"started", r.started}, {"finished", r.finished}, {"status", r.status},
            {"resumed", r.resumed}};
  if (r.source.is_null()) {
    j["board"] = board_json(r.board);
    j["address"] = r.address;
    j["board_settings"] = instruments::settings_to_json(r.settings);
  } else {
    j["source"] = r.source;
  }
  if (!result.is_null()) j["result"] = result;
  return j;
}

void write_json(const fs::path& file, const json& j) {
  common::write_file_atomically(file, j.dump(2) + "\n");
}

// A fresh folder for a new measurement: created, writable, and not holding another one.
void prepare_fresh_folder(const fs::path& dir) {
  if (dir.empty()) throw std::invalid_argument("no output folder: give --out DIR");
  if (fs::exists(dir / kProgressFile) || fs::exists(dir / kRecordFile)) {
    throw std::invalid_argument("the output folder " + dir.string() +
                                " already holds a measurement: continue it with --resume " +
                                dir.string() + ", or choose another --out");
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    throw std::runtime_error("cannot create the output folder " + dir.string() + ": " +
                             (ec ? ec.message() : std::string("not a directory")) +
                             " (choose another --out)");
  }
}

// The saved state of `dir`, checked against what this run would do.
json load_progress(const fs::path& dir, const Measurement& m,
                   const instruments::BoardSettings& settings) {
  const fs::path file = dir / kProgressFile;
  if (!fs::exists(file)) {
    throw std::invalid_argument("--resume " + dir.string() + ": no " + kProgressFile +
                                " there (not a measurement folder, or it never started)");
  }
  const json progress = common::read_json_file(file);
  const std::string where = file.string();
  if (progress.value("kind", "") != m.kind()) {
    throw std::invalid_argument(where + ": a " + progress.value("kind", "?") +
                                " measurement, not " + m.kind() + "; resume it with `metaplast " +
                                "measure " + progress.value("kind", "?") + " --resume`");
  }
  if (progress.value("status", "") == "completed") {
    throw std::invalid_argument(where + ": the measurement is complete; nothing to resume");
  }
  const json recorded = progress.at("options");
  const json now = m.options_json();
  std::vector<std::string> differences;
  for (const auto& [key, value] : now.items()) {
    if (!recorded.contains(key) || recorded[key] != value) {
      differences.push_back(key + ": " + (recorded.contains(key) ? recorded[key].dump() : "-") +
                            " recorded, " + value.dump() + " now");
    }
  }
  for (const auto& d : instruments::setting_differences(
           instruments::settings_from_json(progress.at("board_settings"), where, "/board_settings"),
           settings)) {
    differences.push_back("board setting " + d);
  }
  if (!differences.empty()) {
    std::string text;
    for (const auto& d : differences) text += "\n  " + d;
    throw std::invalid_argument("--resume " + dir.string() + ": the measurement was started with " +
                                "other options or board settings:" + text +
                                "\nresume with the same options and settings, or start a new "
                                "measurement with --out");
  }
  return progress;
}

// An in-process sim: board without a state file is a new chip in every process: nothing
// measured on it can be continued by another process.
void refuse_resume_on_volatile_sim(const std::string& address, const fs::path& dir) {
  if (!board::is_sim_address(address)) return;
  const auto query = address.find('?');
  if (query != std::string::npos) {
    const std::string params = "&" + address.substr(query + 1);
    if (params.find("&state=") != std::string::npos) return;
  }
  throw std::invalid_argument(
      "--resume " + dir.string() + ": the board " + address +
      " is an in-process simulated chip that lives only as long as its process: the cells "
      "measured are gone. Resume on a board that persists (sim:?...&state=FILE, or a "
      "metaplast-simboard over tcp:), or start a new measurement with --out");
}

// Writes what was measured and the record with `status`.
MeasurementOutcome finish(Measurement& m, MeasurementRecord& record, const fs::path& dir,
                          MeasurementStatus status) {
  MeasurementOutcome outcome;
  record.finished = common::utc_now_iso8601();
  record.status = status == MeasurementStatus::completed ? "completed" : "interrupted";
  outcome.result = m.write_results(record, dir, outcome.plot_error);
  write_json(dir / kRecordFile, record_json(record, outcome.result));
  outcome.status = status;
  outcome.dir = dir;
  outcome.record = record;
  if (status == MeasurementStatus::interrupted) {
    outcome.resume_hint = "stopped after " + std::to_string(m.batches_done()) + " of " +
                          std::to_string(m.batches_total()) + " " + m.batch_label() +
                          "s; what was measured is in " + dir.string() +
                          "; to continue, run the same command with --resume " + dir.string();
  }
  return outcome;
}

}  // namespace

std::vector<std::uint64_t> log_spaced_counts(std::uint64_t last, std::size_t points) {
  std::vector<std::uint64_t> counts;
  const double r = static_cast<double>(last);
  for (std::size_t i = 0; i < points; ++i) {
    const double f = points > 1 ? static_cast<double>(i) / static_cast<double>(points - 1) : 1;
    const auto n = static_cast<std::uint64_t>(std::llround(std::pow(r, f)));
    if (counts.empty() || n > counts.back()) counts.push_back(n);
  }
  if (counts.empty() || counts.back() != last) counts.push_back(last);
  return counts;
}

bool wait_until_board_time(MeasurementContext& context, double device_ms) {
  using Clock = std::chrono::steady_clock;
  double now = context.board.uptime_ms();
  if (now >= device_ms) return true;
  // The board's clock may run faster than the wall clock (the simulated board's accelerated
  // clock): its rate is measured from the polls, starting with a short one.
  const auto wall0 = Clock::now();
  const double device0 = now;
  double sleep_ms = 2.0;
  // Polls also keep an armed watchdog fed.
  const std::uint32_t watchdog = context.board.settings().watchdog_ms;
  const double max_sleep_ms = watchdog > 0 ? std::max(1.0, watchdog / 3.0) : 1000.0;
  while (true) {
    if (context.stop_requested()) return false;
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(sleep_ms));
    now = context.board.uptime_ms();
    if (now >= device_ms) return true;
    const double wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - wall0).count();
    const double rate = now > device0 && wall_ms > 0 ? (now - device0) / wall_ms : 1.0;
    sleep_ms = std::clamp(0.9 * (device_ms - now) / rate, 0.5, max_sleep_ms);
  }
}

namespace {

// The record of this run: who measures what on which board. A resume must find the board and
// chip the progress file names.
MeasurementRecord begin_record(const Measurement& m, const HarnessOptions& options,
                               const instruments::BoardInfo& info,
                               const instruments::BoardSettings& settings, const fs::path& dir,
                               const json* progress) {
  std::string station_chip;
  if (options.session.station) {
    station_chip = instruments::load_station(*options.session.station).chip;
  }
  MeasurementRecord record;
  record.kind = m.kind();
  record.options = m.options_json();
  record.board = info;
  record.address = board::board_address(options.session);
  record.chip_id = hil::chip_id_for_board(options.chip, station_chip, record.board.serial);
  record.settings = settings;
  record.status = "running";
  if (!progress) {
    record.started = common::utc_now_iso8601();
    return record;
  }
  const std::string where = (dir / kProgressFile).string();
  const std::string serial = progress->at("board").value("serial", "");
  if (serial != record.board.serial || progress->value("chip_id", "") != record.chip_id) {
    throw std::invalid_argument(where + ": measured on board " + serial + ", chip " +
                                progress->value("chip_id", "") + "; this is board " +
                                record.board.serial + ", chip " + record.chip_id +
                                ": resume on the same board and chip");
  }
  record.started = progress->value("started", "");
  record.resumed = progress->value("resumed", 0) + 1;
  return record;
}

void save_progress(const Measurement& m, const MeasurementRecord& record, const fs::path& dir) {
  const json p = {{"kind", record.kind},
                  {"options", record.options},
                  {"board", board_json(record.board)},
                  {"chip_id", record.chip_id},
                  {"board_settings", instruments::settings_to_json(record.settings)},
                  {"started", record.started},
                  {"resumed", record.resumed},
                  {"status", m.done() ? "completed" : "running"},
                  {"state", m.progress_json()}};
  write_json(dir / kProgressFile, p);
}

// The live view after start() and every batch: progress (the ETA from this session's batches),
// the plot so far and the link.
class LivePublisher {
 public:
  explicit LivePublisher(live::LiveFeed* feed) : feed_(feed) {}

  void publish(const Measurement& m, MeasurementContext& context) {
    if (feed_ == nullptr) return;
    const double total = static_cast<double>(std::max<std::size_t>(m.batches_total(), 1));
    feed_->publish("progress", pace_.progress(static_cast<double>(m.batches_done()) / total,
                                              context.record.kind + ": " + m.batch_label() + " " +
                                                  std::to_string(m.batches_done()) + " of " +
                                                  std::to_string(m.batches_total())));
    if (const auto plot = m.live_plot(context.record)) {
      feed_->publish("plot", live::plot_body(to_live_plot(*plot)));
    }
    feed_->publish("link", hil::link_update(context.board.link_stats(), 0, 0));
  }

 private:
  live::LiveFeed* feed_;
  live::Pace pace_;
};

// start() or restore(), then batches until done or a stop; the progress file after each.
void run_batches(Measurement& m, MeasurementContext& context, const json* progress,
                 const fs::path& dir, util::ProgressLine* progress_line, LivePublisher& live) {
  const auto show_progress = [&] {
    if (progress_line) {
      progress_line->show_count("  " + m.batch_label(), m.batches_done(), m.batches_total());
    }
  };
  if (progress) {
    m.restore(progress->at("state"), context);
    context.log(context.record.kind + ": resumed at " + std::to_string(m.batches_done()) + " of " +
                std::to_string(m.batches_total()) + " " + m.batch_label() + "s");
  } else {
    m.start(context);
    save_progress(m, context.record, dir);
  }
  live.publish(m, context);
  while (!m.done() && !context.stop_requested()) {
    show_progress();
    m.run_batch(context);
    save_progress(m, context.record, dir);
    live.publish(m, context);
  }
  show_progress();
  if (progress_line) progress_line->clear();
}

}  // namespace

MeasurementOutcome run_measurement_without_board(Measurement& m, MeasurementRecord record,
                                                 const fs::path& out) {
  m.check_options();
  prepare_fresh_folder(out);
  record.started = common::utc_now_iso8601();
  record.status = "running";
  return finish(m, record, out, MeasurementStatus::completed);
}

MeasurementOutcome run_measurement(Measurement& m, const HarnessOptions& options) {
  m.check_options();
  if (m.pulses()) board::require_pulse_permission("measure " + m.kind(), options.session);
  // Checked against the station limits before anything is created or sent.
  const instruments::BoardSettings settings =
      board::session_settings(options.session, options.campaign_values);

  const bool resuming = options.resume.has_value();
  const fs::path dir = resuming ? *options.resume : options.out;
  json progress;
  if (resuming) {
    progress = load_progress(dir, m, settings);
    refuse_resume_on_volatile_sim(board::board_address(options.session), dir);
  } else {
    prepare_fresh_folder(dir);
  }

  const auto log = options.log ? options.log : [](const std::string& line) {
    std::fprintf(stderr, "%s\n", line.c_str());
  };
  const auto stop = options.stop_requested ? options.stop_requested : [] { return false; };
  util::ProgressLine line;
  util::ProgressLine* shown = options.progress_line && line.enabled() ? &line : nullptr;
  const auto say = [&](const std::string& text) {
    if (shown) shown->clear();
    log(text);
  };

  // The board is safe (its destructor) on every exit path below.
  std::unique_ptr<instruments::ArrayBoard> board =
      board::open_active_board(options.session, settings);
  MeasurementRecord record =
      begin_record(m, options, board->info(), settings, dir, resuming ? &progress : nullptr);
  write_json(dir / kRecordFile, record_json(record, nullptr));

  MeasurementContext context{*board, record, say, stop};
  try {
    LivePublisher live(options.live);
    run_batches(m, context, resuming ? &progress : nullptr, dir, shown, live);
    board->safe_state();
    board->close();
  } catch (...) {
    if (shown) shown->clear();
    board.reset();  // safe state first
    record.finished = common::utc_now_iso8601();
    record.status = "failed";
    try {
      write_json(dir / kRecordFile, record_json(record, nullptr));
    } catch (...) {
    }
    throw;
  }
  return finish(m, record, dir,
                m.done() ? MeasurementStatus::completed : MeasurementStatus::interrupted);
}

}  // namespace metaplast::bench
