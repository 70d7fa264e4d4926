#include "app/hil/journal.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>

#include "common/clock.hpp"
#include "common/json_file.hpp"
#include "protocols/verify_rule.hpp"

namespace metaplast::hil {

namespace fs = std::filesystem;
namespace ins = instruments;

namespace {

std::runtime_error io_error(const fs::path& file, const std::string& what) {
  return std::runtime_error("journal " + file.string() + ": " + what + " (" + std::strerror(errno) +
                            ")");
}

std::uint64_t unix_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

nlohmann::json stamped(nlohmann::json record) {
  record["time"] = common::utc_now_iso8601();
  record["unix_ms"] = unix_ms();
  return record;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

JournalFile::JournalFile(const fs::path& file) : path_(file) {
  fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw io_error(file, "cannot open");
  // A host killed in the middle of a write leaves a torn last line: drop it, so the next record
  // starts on a line of its own.
  struct stat st {};
  if (::fstat(fd_, &st) != 0) throw io_error(file, "cannot stat");
  char last = '\n';
  if (st.st_size > 0 && ::pread(fd_, &last, 1, st.st_size - 1) != 1) {
    throw io_error(file, "cannot read");
  }
  if (last != '\n') {  // rare: read the whole file only then
    std::ifstream in(file, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!text.empty() && text.back() != '\n') {
      const auto newline = text.rfind('\n');
      const off_t keep = newline == std::string::npos ? 0 : static_cast<off_t>(newline + 1);
      spdlog::warn("journal {}: dropping a torn last record ({} bytes)", file.string(),
                   text.size() - static_cast<std::size_t>(keep));
      if (::ftruncate(fd_, keep) != 0) throw io_error(file, "cannot truncate a torn record");
      ::fsync(fd_);
    }
  }
  syncer_ = std::thread([this] { sync_loop(); });
}

JournalFile::~JournalFile() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  syncer_.join();  // after syncing every line written
  if (!sync_error_.empty()) spdlog::error("journal {}: {}", path_.string(), sync_error_);
  ::close(fd_);
}

void JournalFile::sync_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [&] { return stop_ || synced_ < written_; });
    if (synced_ == written_) return;  // stopping, nothing left to sync
    const std::uint64_t target = written_;
    lock.unlock();
    const int failed = ::fdatasync(fd_) == 0 ? 0 : errno;
    lock.lock();
    if (failed != 0 && sync_error_.empty()) {
      sync_error_ = std::string("cannot sync (") + std::strerror(failed) + ")";
    }
    synced_ = target;
    changed_.notify_all();
  }
}

void JournalFile::throw_if_failed() const {
  if (!sync_error_.empty()) {
    throw std::runtime_error("journal " + path_.string() + ": " + sync_error_);
  }
}

void JournalFile::append_synced_later(const nlohmann::json& record) {
  const std::string line = record.dump() + "\n";
  std::unique_lock lock(mutex_);
  throw_if_failed();
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw io_error(path_, "cannot append");
    }
    done += static_cast<std::size_t>(n);
  }
  ++written_;
  lock.unlock();
  changed_.notify_all();
}

void JournalFile::wait_synced() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return synced_ == written_; });
  throw_if_failed();
}

void JournalFile::append(const nlohmann::json& record) {
  append_synced_later(record);
  wait_synced();
}

std::vector<nlohmann::json> JournalFile::read(const fs::path& file) {
  std::vector<nlohmann::json> records;
  std::ifstream in(file, std::ios::binary);
  if (!in) return records;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t start = 0, line_number = 0;
  while (start < text.size()) {
    const auto end = text.find('\n', start);
    ++line_number;
    if (end == std::string::npos) break;  // torn last line
    records.push_back(common::parse_json_text(
        std::string_view(text).substr(start, end - start),
        "journal " + file.string() + " line " + std::to_string(line_number)));
    start = end + 1;
  }
  return records;
}

// ---------------------------------------------------------------------------------------------

BoardRunJournal::BoardRunJournal(const fs::path& run_dir, BoardCells& cells, std::string chip_id)
    : run_dir_(run_dir),
      cells_(cells),
      chip_id_(std::move(chip_id)),
      file_(run_dir / kJournalFile),
      cell_level_(cells.cells(), -1),
      resume_verify_(cells.cells(), 0),
      journaled_since_load_(cells.cells(), 0) {
  cells_.before_program_batch = [this] { file_.wait_synced(); };
  cells_.on_program_batch = [this](const std::vector<ins::ProgramTarget>& targets,
                                   const ins::ProgramReport& report) { on_batch(targets, report); };
  cells_.on_reboot = [this](const RebootReconciled& event) { on_reboot(event); };
}

std::vector<std::uint64_t> BoardRunJournal::counters_now() { return cells_.counters_now(); }

void BoardRunJournal::on_reboot(const RebootReconciled& event) {
  std::uint64_t total = 0;
  for (auto p : event.pulses) total += p;
  file_.append(stamped({{"type", "reboot"},
                        {"operation", event.operation},
                        {"old_boot_id", event.old_boot_id},
                        {"boot_id", event.new_boot_id},
                        {"phase", context_.phase},
                        {"task", context_.task},
                        {"epoch", context_.epoch},
                        {"step", context_.step},
                        {"cells", event.cells},
                        {"pulses", event.pulses},
                        {"pulses_total", total},
                        {"note",
                         "pulses: applied by the interrupted tries (board counters); "
                         "included in the next batch record of these cells"}}));
}

std::vector<std::uint64_t> BoardRunJournal::finish() {
  const auto counters_end = counters_now();
  const auto link = cells_.board().link_stats();
  file_.append(stamped({{"type", "end"},
                        {"boot_id", boot_id()},
                        {"reboots_reconciled", cells_.reboots_reconciled()},
                        {"requests_sent", link.frames_sent},
                        {"resends", link.resends},
                        {"counters_unit", "SET + RESET pulses per cell, row-major"},
                        {"counters_end", counters_end}}));
  return counters_end;
}

void BoardRunJournal::start(const std::string& run_id) {
  run_id_ = run_id;
  counters_start_ = counters_now();
  const auto& info = cells_.board().info();
  file_.append(stamped({{"type", "start"},
                        {"run_id", run_id_},
                        {"chip", chip_id_},
                        {"board",
                         {{"model", info.model},
                          {"serial", info.serial},
                          {"firmware", info.firmware_version},
                          {"rows", info.rows},
                          {"cols", info.cols}}},
                        {"boot_id", info.boot_id},
                        {"address", cells_.board().address()},
                        {"counters_unit", "SET + RESET pulses per cell, row-major"},
                        {"counters_start", counters_start_}}));
}

std::string BoardRunJournal::before_resume_load() {
  const auto records = JournalFile::read(file_.path());
  const nlohmann::json* start = nullptr;
  for (const auto& r : records) {
    if (r.value("type", "") == "start") {
      start = &r;
      break;
    }
  }
  const auto& info = cells_.board().info();
  if (start == nullptr) {
    spdlog::warn("resume: {} has no start record; writes lost in the crash cannot be reconciled",
                 file_.path().string());
    run_id_ = run_dir_.filename().string();
  } else {
    run_id_ = start->value("run_id", "");
    const std::string chip = start->value("chip", "");
    const std::string serial = (*start)["board"].value("serial", "");
    if (chip != chip_id_) {
      throw std::runtime_error("resume " + run_dir_.string() + ": the run was made on chip " +
                               chip + " (board serial " + serial + "), the board at " +
                               cells_.board().address() + " holds chip " + chip_id_ + " (serial " +
                               info.serial +
                               "); connect the run's chip (another chip does not hold its "
                               "weights) or start a new run");
    }
    if (serial != info.serial) {
      spdlog::warn("resume: chip {} was on board {} and is now on board {}", chip, serial,
                   info.serial);
    }
    counters_start_ = (*start)["counters_start"].get<std::vector<std::uint64_t>>();
    if (!counters_start_.empty() && counters_start_.size() != cells_.cells()) {
      throw std::runtime_error("resume " + run_dir_.string() +
                               ": the journal's start counters "
                               "cover " +
                               std::to_string(counters_start_.size()) + " cells, the board has " +
                               std::to_string(cells_.cells()));
    }
  }
  counters_at_resume_ = counters_now();
  std::fill(journaled_since_load_.begin(), journaled_since_load_.end(), 0u);
  // Which batch records the resumed session finds (those of this session come later).
  batches_ = 0;
  for (const auto& r : records) {
    if (r.value("type", "") != "batch") continue;
    ++batches_;
    const auto& cells = r["cells"];
    const auto& levels = r["levels"];
    for (std::size_t i = 0; i < cells.size(); ++i) {
      const auto index = cells[i].get<std::size_t>();
      if (index < cell_level_.size()) cell_level_[index] = levels[i].get<std::int16_t>();
    }
  }
  context_.phase = "resume";
  resume_record_count_ = records.size();
  return run_id_;
}

nlohmann::json BoardRunJournal::reconcile_resume(std::size_t task_index, std::size_t epochs_done,
                                                 const std::vector<std::uint32_t>& placed,
                                                 const std::vector<double>& level_targets_us,
                                                 double band_us) {
  auto& writes = cells_.writes_per_cell();
  nlohmann::json record = {
      {"type", "resume"},
      {"boot_id", boot_id()},
      {"checkpoint", {{"task_index", task_index}, {"epochs_done", epochs_done}}}};
  // Pulses journaled after the checkpoint by the crashed session(s).
  const auto records = JournalFile::read(file_.path());
  std::size_t from = 0;
  bool found = false;
  for (std::size_t i = 0; i < std::min(records.size(), resume_record_count_); ++i) {
    const auto& r = records[i];
    if (r.value("type", "") == "checkpoint" && r.value("task_index", 0u) == task_index &&
        r.value("epochs_done", 0u) == epochs_done) {
      from = i + 1;
      found = true;
    }
  }
  if (!found) from = 0;
  std::uint64_t journaled_after = 0;
  std::uint32_t previous_boot = 0;
  for (std::size_t i = 0; i < std::min(records.size(), resume_record_count_); ++i) {
    const auto& r = records[i];
    if (r.contains("boot_id")) previous_boot = r["boot_id"].get<std::uint32_t>();
    if (found && i >= from && r.value("type", "") == "batch") {
      for (const auto& p : r["pulses"]) journaled_after += p.get<std::uint64_t>();
    }
  }
  record["previous_boot_id"] = previous_boot;
  record["board_rebooted"] = previous_boot != 0 && previous_boot != boot_id();
  if (!counters_start_.empty()) {
    std::uint64_t lost = 0, counted_more = 0, board_total = 0;
    for (std::size_t c = 0; c < writes.size(); ++c) {
      const std::uint64_t board = counters_at_resume_[c] - counters_start_[c];
      const std::uint64_t checkpoint = writes[c] - journaled_since_load_[c];
      board_total += board;
      if (board >= checkpoint) {
        writes[c] += static_cast<std::uint32_t>(board - checkpoint);
        lost += board - checkpoint;
      } else {
        counted_more += checkpoint - board;
      }
    }
    record["board_pulses_since_start"] = board_total;
    record["recovered_writes"] = lost;  // pulses the checkpoint did not hold
    record["journaled_after_checkpoint"] = journaled_after;
    record["unjournaled"] = lost >= journaled_after ? lost - journaled_after : 0;
    record["host_counted_more"] = counted_more;
    spdlog::info(
        "resume: {} writes since the checkpoint recovered from the board's counters ({} "
        "journaled, {} in a batch the host did not see end)",
        lost, journaled_after, record["unjournaled"].get<std::uint64_t>());
  } else {
    record["recovered_writes"] = 0;
    record["note"] = "no start record: writes lost in the crash not reconciled";
  }
  std::uint64_t reprogrammed = 0;
  for (auto n : journaled_since_load_) reprogrammed += n != 0;
  record["reprogrammed_cells"] = reprogrammed;
  // Every placed cell read back once more: in its band now?
  std::vector<ins::Cell> cells;
  cells.reserve(placed.size());
  for (auto index : placed) cells.push_back(cells_.cell(index));
  const auto readings = cells.empty() ? std::vector<ins::CellReading>{} : cells_.read(cells);
  std::size_t in_band = 0;
  nlohmann::json out_of_band = nlohmann::json::array();
  for (std::size_t k = 0; k < readings.size(); ++k) {
    const std::int16_t level = cell_level_[placed[k]];
    if (level < 0 || static_cast<std::size_t>(level) >= level_targets_us.size()) continue;
    const double target = level_targets_us[static_cast<std::size_t>(level)];
    const double g = readings[k].conductance_us;
    const bool ok =
        protocols::verify_band(static_cast<std::size_t>(level), target, band_us).contains(g);
    in_band += ok;
    if (!ok && out_of_band.size() < 32) {
      out_of_band.push_back(
          {{"cell", placed[k]}, {"level", level}, {"read_us", g}, {"target_us", target}});
    }
  }
  record["out_of_band"] = out_of_band;
  // The store's own read-back judged every cell not reprogrammed to be in band; the reprogrammed
  // ones are in band when their verify passed.
  std::size_t failed = 0;
  for (auto index : placed) failed += resume_verify_[index] == 2;
  record["placed_cells"] = placed.size();
  record["placed_cells_in_band"] = placed.size() - failed;
  // A fresh read of every cell now: relaxation and read noise move some cells just out of the
  // band after their verify (as in any run); for information.
  record["placed_cells_in_band_on_reread"] = in_band;
  file_.append(stamped(record));
  context_.phase = "train";
  return record;
}

void BoardRunJournal::checkpoint(std::size_t task_index, std::size_t epochs_done,
                                 const std::string& task, int epoch) {
  std::uint64_t total = 0;
  for (auto w : cells_.writes_per_cell()) total += w;
  file_.append(stamped({{"type", "checkpoint"},
                        {"task_index", task_index},
                        {"epochs_done", epochs_done},
                        {"task", task},
                        {"epoch", epoch},
                        {"boot_id", boot_id()},
                        {"cell_writes_total", total}}));
}

void BoardRunJournal::snapshot_written(const fs::path& file, const std::string& task, int epoch) {
  file_.append(stamped({{"type", "snapshot"},
                        {"file", fs::relative(file, run_dir_).string()},
                        {"task", task},
                        {"epoch", epoch},
                        {"boot_id", boot_id()}}));
}

std::vector<VerifyRow> BoardRunJournal::take_verify_rows() {
  std::vector<VerifyRow> rows;
  rows.swap(verify_rows_);
  return rows;
}

std::uint64_t BoardRunJournal::recovered_writes() const {
  // A second crash before the next checkpoint supersedes the first reconciliation against the
  // same checkpoint (it counts everything since that checkpoint again).
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::uint64_t> per_checkpoint;
  for (const auto& r : JournalFile::read(file_.path())) {
    if (r.value("type", "") != "resume") continue;
    const auto& c = r["checkpoint"];
    per_checkpoint[{c["task_index"].get<std::uint64_t>(), c["epochs_done"].get<std::uint64_t>()}] =
        r.value("recovered_writes", std::uint64_t{0});
  }
  std::uint64_t total = 0;
  for (const auto& [key, n] : per_checkpoint) total += n;
  return total;
}

void BoardRunJournal::on_batch(const std::vector<ins::ProgramTarget>& /*targets*/,
                               const ins::ProgramReport& report) {
  const std::uint16_t cols = cells_.board().info().cols;
  nlohmann::json cells = nlohmann::json::array(), levels = nlohmann::json::array(),
                 pulses = nlohmann::json::array(), reads = nlohmann::json::array(),
                 passed = nlohmann::json::array();
  std::size_t failed = 0;
  ++batches_;
  for (std::size_t i = 0; i < report.cells.size(); ++i) {
    const auto& r = report.cells[i];
    const std::uint32_t index = static_cast<std::uint32_t>(r.cell.row) * cols + r.cell.col;
    cells.push_back(index);
    levels.push_back(r.target_level);
    pulses.push_back(r.attempts);
    reads.push_back(std::round(r.final_conductance_us * 1000.0) / 1000.0);
    passed.push_back(r.passed ? 1 : 0);
    failed += !r.passed;
    journaled_since_load_[index] += r.attempts;
    cell_level_[index] = r.target_level;
    if (context_.phase == "resume") resume_verify_[index] = r.passed ? 1 : 2;
    verify_rows_.push_back({index, r.target_level, r.attempts,
                            static_cast<float>(r.final_conductance_us), r.passed, batches_});
  }
  file_.append_synced_later(stamped(
      {{"type", "batch"},
       {"seq", batches_},
       {"boot_id", boot_id()},
       {"phase", context_.phase},
       {"task", context_.task},
       {"epoch", context_.epoch},
       {"step", context_.step},
       {"cells", cells},
       {"levels", levels},
       {"pulses", pulses},
       {"final_us", reads},
       {"passed", passed},
       {"status", failed == 0 ? std::string("passed") : std::to_string(failed) + " failed"}}));
}

}  // namespace metaplast::hil
