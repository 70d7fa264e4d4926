// The program-batch journal of a training run on a board (journal.jsonl in the run directory,
// layout in docs/run-records.md): one JSON line per record. Every record is written before the
// trainer goes on, so a killed host process loses none. A batch record is made durable (fdatasync)
// on a background thread while the trainer computes its next step, and the next batch's pulses
// wait for it: a crash of the machine can lose at most the record of the last batch, whose pulses
// the resume reconciles from the board's counters as it does a batch cut by a crash. Every
// other record is durable before the call returns. A kill in the middle of a line leaves a torn
// last line, which opening the journal again drops.
//
// Records ("type"):
//   start       once, before the first programming: board identity, boot id, chip, run id and the
//               board's pulse counters (SET + RESET per cell, row-major) at that moment;
//   batch       one program-and-verify batch: cells, target levels, pulses, final reads, pass;
//   checkpoint  after every epoch's checkpoint: its position (task_index, epochs_done);
//   resume      a resumed run's reconciliation (see BoardRunJournal::reconcile_resume);
//   snapshot    an epoch's HDF5 snapshot file, once renamed into place;
//   reboot      a board reboot the run recovered from: the request it interrupted, the new boot
//               id, and per cell the pulses of an interrupted program-and-verify (from the board's
//               counters; they are also in the next batch record of those cells);
//   end         once, when the run finishes: the board's pulse counters at that moment.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "app/hil/board_store.hpp"
#include "instruments/array_board.hpp"

namespace metaplast::hil {

inline constexpr const char* kJournalFile = "journal.jsonl";

// Append-only JSON-lines file; each line is written at once and synced to disk (fdatasync) by
// the file's own background thread.
class JournalFile {
 public:
  // Creates the file or opens it for appending (dropping a torn last line). Throws
  // std::runtime_error naming the file when it cannot be opened.
  explicit JournalFile(const std::filesystem::path& file);
  // Waits for the lines written to be synced (an error is logged, not thrown).
  ~JournalFile();
  JournalFile(const JournalFile&) = delete;
  JournalFile& operator=(const JournalFile&) = delete;

  // Writes one line and returns once it is on disk.
  void append(const nlohmann::json& record);
  // Writes one line and returns; the background thread syncs it (wait_synced() waits for it).
  void append_synced_later(const nlohmann::json& record);
  // Returns once every line written so far is on disk.
  void wait_synced();
  // The three throw std::runtime_error naming the file on an I/O error, also for a failed
  // background sync of an earlier line.
  const std::filesystem::path& path() const { return path_; }

  // Every complete record of a journal file (a torn last line is skipped). Throws
  // std::runtime_error naming the file and line for a corrupt line elsewhere.
  static std::vector<nlohmann::json> read(const std::filesystem::path& file);

 private:
  void sync_loop();
  void throw_if_failed() const;  // mutex_ held

  std::filesystem::path path_;
  int fd_ = -1;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::uint64_t written_ = 0;  // lines written by this object
  std::uint64_t synced_ = 0;   // of which the background thread has synced the first synced_
  std::string sync_error_;     // the first failed sync's error, for every later call
  bool stop_ = false;
  std::thread syncer_;  // the last member: started once the others are
};

// Where the trainer is, for the batch records.
struct JournalContext {
  std::string phase = "initial";  // "initial", "train", "resume"
  std::string task;
  int epoch = 0;           // 1-based within task (0: before training)
  std::uint64_t step = 0;  // training steps of this session
};

// One program-and-verify batch as the journal and the epoch snapshot see it.
struct VerifyRow {
  std::uint32_t cell = 0;  // row-major index
  std::uint8_t level = 0;
  std::uint32_t pulses = 0;
  float final_conductance_us = 0;
  bool passed = false;
  std::uint64_t batch = 0;
};

// Journal and crash reconciliation of the board layers of one run. It hooks the board cells:
// every batch is journaled before program() returns (BoardCells::on_program_batch), synced in
// the background, and the next batch waits for that sync (BoardCells::before_program_batch).
class BoardRunJournal {
 public:
  BoardRunJournal(const std::filesystem::path& run_dir, BoardCells& cells, std::string chip_id);
  ~BoardRunJournal() {
    cells_.before_program_batch = nullptr;
    cells_.on_program_batch = nullptr;
    cells_.on_reboot = nullptr;
  }
  BoardRunJournal(const BoardRunJournal&) = delete;
  BoardRunJournal& operator=(const BoardRunJournal&) = delete;

  // A fresh run: writes the start record (board identity, counters now).
  void start(const std::string& run_id);
  // A resumed run, before the checkpoint's store state is loaded: checks that the board is the
  // run's chip (std::runtime_error otherwise: "resume: ... another chip") and reads the board's
  // counters now. Returns the run id of the start record.
  std::string before_resume_load();
  // After the store state is loaded (writes per cell from the checkpoint, out-of-band cells
  // reprogrammed and journaled): adds to each cell the pulses the board counted since the run
  // started that the checkpoint does not hold (journaled after the checkpoint, or never
  // journaled because the host died mid-batch), re-reads the placed cells and writes the resume
  // record. `placed` = the cells holding weights (their levels: cell_levels()); in band means
  // within band_us of level_targets_us[level] (the calibrated medians the weight store checks
  // on resume; the LCS: at most target + band).
  nlohmann::json reconcile_resume(std::size_t task_index, std::size_t epochs_done,
                                  const std::vector<std::uint32_t>& placed,
                                  const std::vector<double>& level_targets_us, double band_us);
  void checkpoint(std::size_t task_index, std::size_t epochs_done, const std::string& task,
                  int epoch);
  void snapshot_written(const std::filesystem::path& file, const std::string& task, int epoch);

  JournalContext& context() { return context_; }
  // Verify rows since the last call (for the epoch snapshot), then cleared.
  std::vector<VerifyRow> take_verify_rows();
  // Writes recovered after crashes, for summary.json: the last resume record per checkpoint.
  std::uint64_t recovered_writes() const;
  // The board's SET + RESET counters now, per cell (row-major), and at the run's start.
  std::vector<std::uint64_t> counters_now();
  // The end record (the board's counters now, returned); once, when the run is finished.
  std::vector<std::uint64_t> finish();
  const std::vector<std::uint64_t>& counters_start() const { return counters_start_; }
  std::uint32_t boot_id() const { return cells_.board().info().boot_id; }
  const std::string& run_id() const { return run_id_; }
  // Per cell (row-major): the level of its last journaled program-and-verify, -1 if none.
  const std::vector<std::int16_t>& cell_levels() const { return cell_level_; }

 private:
  void on_batch(const std::vector<instruments::ProgramTarget>& targets,
                const instruments::ProgramReport& report);
  void on_reboot(const RebootReconciled& event);

  std::filesystem::path run_dir_;
  BoardCells& cells_;
  std::string chip_id_, run_id_;
  JournalFile file_;
  JournalContext context_;
  std::uint64_t batches_ = 0;
  std::size_t resume_record_count_ = 0;  // records present when the resumed session began
  std::vector<VerifyRow> verify_rows_;
  std::vector<std::uint64_t> counters_start_, counters_at_resume_;
  std::vector<std::int16_t> cell_level_;
  std::vector<std::uint8_t> resume_verify_;  // per cell: 0 not reprogrammed on resume, 1 passed, 2 failed
  std::vector<std::uint32_t> journaled_since_load_;  // pulses per cell journaled since attach
};

}  // namespace metaplast::hil
