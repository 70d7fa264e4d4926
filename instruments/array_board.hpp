// The 128 x 128 1T1R array test board, driven over any drivers::Transport with the board
// protocol of docs/protocol.md. The same class drives real firmware and the simulated board
// ("mock the instrument, not the driver").
//
// Lifecycle (one state machine; an operation called in the wrong state throws LifecycleError
// naming the state it needs and the call that gets there):
//
//     closed --open()--> connected (identified) --configure()--> configured --activate()--> active
//       ^                    |                         ^   |                                   |
//       |                    +--------safe_state()-----|---+------------safe_state()------------+
//       |                                              |   v
//       +-----------------close() from any state------ safe (lines grounded on the board)
//                                                      (configure() again to leave it)
//
//   - identify() and counters() need any open state; form/set/reset/read/program_and_verify need
//     active. configure() is accepted from connected, configured, active and safe.
//   - The board enters safe on its own on reset and on host silence (watchdog); the host follows:
//     an operation that fails (link dead after retries, board rebooted, board error) leaves the
//     object in safe (or closed if the link is gone) and the caller must configure()+activate().
//   - The destructor sends safe state if the link is alive (RAII); close() does the same.
//
// Errors: invalid transitions throw LifecycleError (std::logic_error); host station limits throw
// LimitError before anything is sent; the board refusing a request throws BoardStatusError with
// the board's status code; a link that stays dead after the retry policy throws LinkError; a
// board reboot (boot id changed) throws BoardRebootedError carrying what was in flight, so the
// caller can reconcile by reading back (reconcile_after_reboot()). Nothing here blocks longer
// than the retry policy's bound.
//
// Thread safety: every public operation takes one internal mutex; one board object may be shared
// between threads, operations are serialised.
//
// The value types (Cell, BoardSettings, ProgramTarget, ProgramReport, ...) and the errors are in
// instruments/board_types.hpp, included here. The implementation is split by job:
// array_board.cpp (lifecycle, the exchange with its reboot detection, pulses, reads, counters)
// and array_board_program.cpp (program-and-verify, on the board or by the host loop, and the
// reconciliation after a reboot).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "instruments/board_link.hpp"
#include "instruments/board_types.hpp"
#include "instruments/frame_recorder.hpp"
#include "instruments/station_limits.hpp"
#include "protocols/verify_rule.hpp"

namespace metaplast::instruments {

class ArrayBoard final {
 public:
  // address: any drivers::make_transport address (serial:..., tcp:..., sim:?seed=N if the
  // application registered it). Nothing is opened until open().
  explicit ArrayBoard(std::string address, StationLimits limits = StationLimits::defaults(),
                      RetryPolicy policy = {});
  ~ArrayBoard();
  ArrayBoard(const ArrayBoard&) = delete;
  ArrayBoard& operator=(const ArrayBoard&) = delete;

  // Every frame both ways goes to this recorder (may be null). Set before open() to record
  // the whole session.
  void set_recorder(std::shared_ptr<FrameRecorder> recorder);

  // closed -> connected: opens the transport and identifies the board. Throws
  // std::invalid_argument for a malformed address, LinkError if the board does not answer.
  const BoardInfo& open();
  // Identify again (any open state); detects a reboot (throws BoardRebootedError).
  const BoardInfo& identify();
  // -> configured. Throws LimitError (station) before sending, BoardStatusError if the board
  // refuses.
  void configure(const BoardSettings& settings);
  // configured -> active.
  void activate();
  // any open state -> safe: the board grounds its lines. Idempotent.
  void safe_state();
  // -> closed, after safe state if the link is alive. Never throws.
  void close() noexcept;

  BoardState state() const;
  const BoardInfo& info() const;          // valid after open()
  const BoardSettings& settings() const;  // valid after configure()
  // The configuration the board reports it holds (GET_CONFIGURATION), in wire units: compare
  // with to_wire(settings()). Any open state.
  protocols::Configuration reported_configuration();
  const StationLimits& station_limits() const { return limits_; }
  const std::string& address() const { return address_; }

  // Array operations (state active). Cells outside the geometry throw std::out_of_range before
  // anything is sent. Lists longer than a frame are split; order of results = order of cells.
  void form(const std::vector<Cell>& cells);
  void set(const std::vector<Cell>& cells, Level level);  // level 1..N (I_CC table)
  void set_explicit(const std::vector<Cell>& cells, const PulseSpec& pulse);
  void reset(const std::vector<Cell>& cells);
  std::vector<CellReading> read(const std::vector<Cell>& cells);
  ConductanceMap read_row(std::uint16_t row);
  ConductanceMap read_block(std::uint16_t row0, std::uint16_t col0, std::uint16_t rows,
                            std::uint16_t cols, const ProgressCallback& progress = {});
  ConductanceMap read_array(const ProgressCallback& progress = {});

  // Program-and-verify as one instrument operation: the board's opcode or a host loop (see
  // ProgramOptions::implementation), batched within the frame size. Throws LimitError if
  // max_attempts exceeds the station limit, BoardRebootedError (with the BatchRecord) if the
  // board was reset meanwhile.
  ProgramReport program_and_verify(const std::vector<ProgramTarget>& targets,
                                   const ProgramOptions& options);

  // The board's own clock (GET_STATUS uptime, ms since its boot; any open state): the time base
  // of measurements that wait (retention), valid within one boot id. On the simulated board it
  // is device time (docs/calibration.md, "Device time"). Wraps after ~49 days.
  std::uint32_t uptime_ms();

  // Per-cell pulse counters (any open state).
  std::vector<CellCounters> counters(const std::vector<Cell>& cells);
  std::vector<CellCounters> counters_array(const ProgressCallback& progress = {});

  // Status of a board batch (program-and-verify opcode) by id.
  BatchStatus batch_status(std::uint32_t batch_id);

  // Raw ADC code -> conductance (uS) with the board's calibration and the configured read
  // voltage and TIA range.
  double code_to_conductance_us(std::uint16_t code, std::uint8_t tia_range) const;
  // Program-and-verify target conductance of a level (uS), from identify.
  double level_conductance_us(Level level) const;
  // The band PROGRAM_VERIFY holds `level` to with a half-width of band_us, as the board applies
  // it (docs/protocol.md 4.6; the half-width on the wire's 0.01 uS grid).
  protocols::VerifyBand verify_band(Level level, double band_us) const;

  // Link statistics (for benchmarks and reports).
  LinkStats link_stats() const;
  // The link itself (selftest, replay); valid after open().
  BoardLink& link();

 private:
  struct Pulse;  // which pulse a chunked FORM/SET/RESET applies
  // The two implementations of program_and_verify (array_board_program.cpp), called with the
  // lock held once the request is checked and `record` is in flight.
  ProgramReport program_and_verify_on_board(const std::vector<ProgramTarget>& targets,
                                            const ProgramOptions& options, BatchRecord& record);
  ProgramReport program_and_verify_on_host(const std::vector<ProgramTarget>& targets,
                                           const ProgramOptions& options, BatchRecord& record);
  void require(std::initializer_list<BoardState> allowed, const char* operation) const;
  void transition(BoardState to);
  void check_cells(const std::vector<Cell>& cells, const char* operation) const;
  void check_level(Level level, bool allow_lcs, const char* operation) const;
  // One exchange: boot id check (reboot -> BoardRebootedError), re-identify after a reconnect,
  // non-OK status -> BoardStatusError.
  LinkReply exchange(protocols::Opcode opcode, std::span<const std::uint8_t> payload,
                     std::chrono::milliseconds execution_time, const char* operation);
  template <class Body, class Request>
  Body call(const Request& request, const char* operation,
            std::chrono::milliseconds execution_time = {});
  void identify_locked(bool first);
  // configure()'s level table: checked against the board, sent with SET_LEVELS (an empty table:
  // back to the board's own, when it has LEVEL_TABLE) and the I_CC it derives checked against the
  // station; info_.levels then holds the table in force.
  void apply_level_table(const BoardSettings& settings);
  [[noreturn]] void report_reboot(std::uint32_t new_boot_id, const char* operation);
  // unformed == nullptr: a NOT_FORMED refusal throws; else the refused cells' indices (into
  // `cells`) are collected and the rest is pulsed.
  void apply_pulses(const std::vector<Cell>& cells, const Pulse& pulse, const char* operation,
                    std::vector<std::uint32_t>* batch_ids, std::vector<std::size_t>* unformed);
  std::vector<std::uint16_t> read_codes(const protocols::Selection& selection,
                                        std::uint8_t& tia_range, const ProgressCallback& progress);
  std::vector<CellCounters> read_counters(const protocols::Selection& selection,
                                          const ProgressCallback& progress);
  ConductanceMap read_region(std::uint16_t row0, std::uint16_t col0, std::uint16_t rows,
                             std::uint16_t cols, const ProgressCallback& progress);
  std::uint32_t new_batch_id();
  std::chrono::milliseconds execution_allowance(std::size_t pulses, std::size_t reads) const;
  std::uint16_t index_of(const Cell& cell) const;
  Cell cell_of(std::uint16_t index) const;

  std::string address_;
  StationLimits limits_;
  RetryPolicy policy_;
  mutable std::recursive_mutex mutex_;
  BoardState state_ = BoardState::closed;
  std::unique_ptr<BoardLink> link_;
  std::shared_ptr<FrameRecorder> recorder_;
  BoardInfo info_;
  bool identified_ = false;
  BoardSettings settings_;
  bool configured_ = false;
  std::uint32_t next_batch_id_ = 1;
  BatchRecord* in_flight_ = nullptr;  // the program_and_verify running now, if any
};

// After a BoardRebootedError: re-identify/configure the board with `settings`, query the status
// of every batch id in the record, read every target cell back and its counters, and return the
// true state; `remaining` are the targets not (yet) in band, ready for another
// program_and_verify. The board is left active.
Reconciliation reconcile_after_reboot(ArrayBoard& board, const BatchRecord& record,
                                      const BoardSettings& settings);

// The CONFIGURE body for `settings` (volts to mV, ns rounded), as configure() sends it.
protocols::Configuration to_wire(const BoardSettings& settings);

// Checks settings / pulses against station limits; throws LimitError naming the value, its
// limit and where the limit comes from. Used by configure(), set_explicit() and replay.
void check_station_limits(const BoardSettings& settings, const StationLimits& limits);
void check_station_limits(const PulseSpec& pulse, const StationLimits& limits);
// The level table's part of the settings check: one target per gate, ascending, gates within
// max_wl_voltage_v. (Its I_CC is checked against max_compliance_ua once the board has derived it.)
void check_level_table(const std::vector<double>& gates_v, const std::vector<double>& targets_us,
                       const StationLimits& limits);

}  // namespace metaplast::instruments
