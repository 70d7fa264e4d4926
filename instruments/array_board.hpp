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
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "instruments/board_link.hpp"
#include "instruments/frame_recorder.hpp"
#include "instruments/station_limits.hpp"

namespace metaplast::instruments {

// ---------------------------------------------------------------------------------------------
// Types

struct Cell {
  std::uint16_t row = 0;
  std::uint16_t col = 0;
  friend bool operator==(const Cell&, const Cell&) = default;
};

enum class BoardState { closed, connected, configured, active, safe };
const char* to_string(BoardState state);

// Conductance levels: 0 is the low-conductance state (RESET), 1..N the HCS levels set by the
// board's I_CC table entries 0..N-1 (BOARD.md: 8 I_CC settings -> 9 levels).
using Level = std::uint8_t;
inline constexpr Level kLcsLevel = 0;

// The board's own safe operating limits, as reported by identify (engineering units).
struct BoardLimits {
  double read_voltage_min_v = 0, read_voltage_max_v = 0;
  double max_wl_voltage_v = 0;
  double max_bl_voltage_v = 0;
  double max_sl_voltage_v = 0;
  double pulse_width_min_ns = 0, pulse_width_max_ns = 0;
  std::uint32_t max_attempts = 0;  // per program-and-verify cell
  std::uint32_t watchdog_min_ms = 0, watchdog_max_ms = 0;
};

// One TIA range: conductance_us = (code - zero_code) * nanoamps_per_code / read_voltage_mv.
struct TiaCalibration {
  double full_scale_ua = 0;
  double nanoamps_per_code = 0;
  std::uint16_t zero_code = 0;
};

// One programming level: index 0 = LCS, 1..N = HCS by I_CC.
struct LevelInfo {
  double icc_ua = 0;
  double gate_voltage_v = 0;
  double target_conductance_us = 0;  // program-and-verify target
};

struct BoardInfo {
  std::string model;
  std::string serial;
  std::string firmware_version;
  std::uint16_t protocol_version = 0;
  std::uint16_t rows = 0;
  std::uint16_t cols = 0;
  std::uint8_t adc_bits = 0;
  std::uint8_t dac_bits = 0;
  std::vector<TiaCalibration> tia_ranges;  // index = TIA range number
  std::vector<LevelInfo> levels;           // index = level (0 = LCS)
  BoardLimits limits;
  std::uint32_t boot_id = 0;           // changes on every power-up / reset
  std::uint32_t capability_flags = 0;  // protocols::capability bits
  std::size_t max_payload_bytes = 0;   // largest frame payload either way
  bool has(std::uint32_t capability_bit) const { return (capability_flags & capability_bit) != 0; }
  bool has_program_verify() const;  // the board runs program-and-verify itself
  std::size_t cells() const { return std::size_t{rows} * cols; }
};

// Settings applied by configure(). Units in the names; checked against the station limits
// first, then against the board's limits, then sent.
struct BoardSettings {
  double read_voltage_v = 0.2;
  double set_bl_voltage_v = 1.2;  // SET: bit line amplitude (gate from the I_CC table level)
  double set_pulse_width_ns = 100;
  double reset_sl_voltage_v = 1.5;  // RESET: source line amplitude
  double reset_wl_voltage_v = 3.0;  // RESET: gate fully on
  double reset_pulse_width_ns = 100;
  double form_bl_voltage_v = 3.6;   // FORM: high bit line voltage, gate-limited current
  double form_wl_voltage_v = 0.85;  // about the lowest level's gate: limits the forming current
  double form_pulse_width_ns = 1000;
  std::uint8_t tia_range = 0;     // index into BoardInfo::tia_ranges
  std::uint32_t watchdog_ms = 0;  // 0: watchdog disarmed
};

// An explicit SET pulse instead of an I_CC table level (within the limits).
struct PulseSpec {
  double wl_voltage_v = 0;
  double bl_voltage_v = 0;
  double pulse_width_ns = 0;
};

// A raw read as the board reports it, and its conductance with the board's calibration.
struct CellReading {
  Cell cell;
  std::uint16_t code = 0;  // raw ADC word
  std::uint8_t tia_range = 0;
  double conductance_us = 0;
};

// A rectangular region read in one operation (row, block or whole array), row-major.
struct ConductanceMap {
  std::uint16_t row0 = 0, col0 = 0, rows = 0, cols = 0;
  std::uint8_t tia_range = 0;
  std::vector<std::uint16_t> codes;
  std::vector<double> conductance_us;
  double at_us(std::uint16_t r, std::uint16_t c) const {
    return conductance_us[static_cast<std::size_t>(r - row0) * cols + (c - col0)];
  }
};

struct CellCounters {
  Cell cell;
  std::uint32_t set_pulses = 0;
  std::uint32_t reset_pulses = 0;
  std::uint32_t form_pulses = 0;
  // One programming operation (the unit of endurance) is one SET or RESET pulse.
  std::uint64_t programming_operations() const { return std::uint64_t{set_pulses} + reset_pulses; }
};

struct ProgramTarget {
  Cell cell;
  Level level = 0;
};

enum class VerifyImplementation {
  automatic,  // the board's opcode if identify reports it, else the host loop
  board,      // the board's program-and-verify opcode (error if the board lacks it)
  host,       // a host loop over reset/set/read
};

using ProgressCallback = std::function<void(std::size_t done, std::size_t total)>;

struct ProgramOptions {
  double band_us = 5.0;             // pass when |G - nominal(level)| <= band_us
  std::uint32_t max_attempts = 20;  // pulses per cell at most; <= station max_pulses_per_verify
  bool trace = false;               // keep per-attempt raw codes
  VerifyImplementation implementation = VerifyImplementation::automatic;
  ProgressCallback progress;  // called after every batch
  // Read the cells' counters before programming (one READ_COUNTERS per 400 cells), so that a
  // reconciliation after a reboot can say exactly how many pulses each cell received.
  bool snapshot_counters = true;
};

struct CellProgramResult {
  Cell cell;
  Level target_level = 0;
  std::uint16_t final_code = 0;
  double final_conductance_us = 0;
  std::uint32_t attempts = 0;  // programming pulses spent on this cell
  bool passed = false;
  bool not_formed = false;           // the board refused to pulse it (never formed): not programmed
  std::vector<std::uint16_t> trace;  // raw code after each attempt (if asked for)
};

struct ProgramReport {
  std::vector<CellProgramResult> cells;
  VerifyImplementation used = VerifyImplementation::automatic;
  std::size_t passed() const;
  std::size_t failed() const { return cells.size() - passed(); }
};

// What a program_and_verify call had in flight: kept by the board object and handed out with
// BoardRebootedError so the caller can reconcile.
enum class BatchStatus { done, in_progress, unknown, not_started };
const char* to_string(BatchStatus status);

struct BatchRecord {
  std::vector<ProgramTarget> targets;  // the whole operation, in order
  ProgramOptions options;
  VerifyImplementation implementation = VerifyImplementation::automatic;
  std::vector<std::uint32_t> batch_ids;  // one per board batch sent (board implementation)
  std::size_t cells_confirmed = 0;       // targets whose results the host received (or not formed)
  std::vector<CellProgramResult> confirmed;   // those results
  std::vector<CellCounters> counters_before;  // per target (if snapshot_counters), same order
};

// ---------------------------------------------------------------------------------------------
// Errors

class LifecycleError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// The board's boot id changed: it was reset (power cycle, brown-out, watchdog reset) and lost
// its configuration; `batch` says what was in flight (see reconcile_after_reboot()).
class BoardRebootedError : public BoardError {
 public:
  BoardRebootedError(const std::string& what, std::uint32_t old_boot_id, std::uint32_t new_boot_id,
                     std::optional<BatchRecord> batch)
      : BoardError(what),
        old_boot_id(old_boot_id),
        new_boot_id(new_boot_id),
        batch(std::move(batch)) {}
  std::uint32_t old_boot_id;
  std::uint32_t new_boot_id;
  std::optional<BatchRecord> batch;  // set when a program_and_verify was interrupted
};

// ---------------------------------------------------------------------------------------------
// The driver

class ArrayBoard {
 public:
  // address: any drivers::make_transport address (serial:..., tcp:..., sim:?seed=N if the
  // application registered it). Nothing is opened until open().
  explicit ArrayBoard(std::string address, StationLimits limits = StationLimits::defaults(),
                      RetryPolicy policy = {});
  virtual ~ArrayBoard();
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

  // Link statistics (for benchmarks and reports).
  LinkStats link_stats() const;
  // The link itself (selftest, replay); valid after open().
  BoardLink& link();

 protected:
  // Hooks for subclasses (quirks of a firmware revision). Called with the lock held.
  virtual ProgramReport program_and_verify_on_board(const std::vector<ProgramTarget>& targets,
                                                    const ProgramOptions& options,
                                                    BatchRecord& record);
  virtual ProgramReport program_and_verify_on_host(const std::vector<ProgramTarget>& targets,
                                                   const ProgramOptions& options,
                                                   BatchRecord& record);
  // Called after every state change (logging, UI).
  virtual void on_state_changed(BoardState /*from*/, BoardState /*to*/) {}

 private:
  struct Pulse;  // which pulse a chunked FORM/SET/RESET applies
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
  bool in_band(Level level, double conductance_us, double band_us) const;

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
struct ReconciledCell {
  ProgramTarget target;
  CellReading reading;
  CellCounters counters;
  bool in_band = false;
  // Pulses applied to this cell by the interrupted operation (counter difference), when the
  // record holds counters_before.
  std::optional<std::uint64_t> pulses_during_operation;
};
struct Reconciliation {
  std::vector<std::pair<std::uint32_t, BatchStatus>> batches;
  std::vector<ReconciledCell> cells;
  std::vector<ProgramTarget> remaining;
};
Reconciliation reconcile_after_reboot(ArrayBoard& board, const BatchRecord& record,
                                      const BoardSettings& settings);

// The CONFIGURE body for `settings` (volts to mV, ns rounded), as configure() sends it.
protocols::Configuration to_wire(const BoardSettings& settings);

// Checks settings / pulses against station limits; throws LimitError naming the value, its
// limit and where the limit comes from. Used by configure(), set_explicit() and replay.
void check_station_limits(const BoardSettings& settings, const StationLimits& limits);
void check_station_limits(const PulseSpec& pulse, const StationLimits& limits);

}  // namespace metaplast::instruments
