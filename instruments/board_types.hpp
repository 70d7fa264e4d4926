// The value types and errors of the array-board driver (instruments/array_board.hpp): what goes
// into and comes out of ArrayBoard's operations, in engineering units. Plain data: no I/O, no
// lifecycle; the rules that use them (limits, states, units on the wire) are in array_board.hpp
// and docs/protocol.md. Included by array_board.hpp, so includers of that header see them all.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "instruments/board_link.hpp"  // BoardError, the base of every board failure

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
// board's I_CC table entries 0..N-1 (docs/calibration.md: 8 I_CC settings -> 9 levels).
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
  // The level table (I_CC table) in place of the board's own: the SET gate voltage and the
  // program-and-verify target of each HCS level (level k = entry k - 1), ascending, same length.
  // Both empty: the board's own table. Sent with SET_LEVELS (docs/bench.md, "The level table").
  std::vector<double> level_gate_voltages_v;
  std::vector<double> level_targets_us;
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
// Reconciliation after a reboot (reconcile_after_reboot() in array_board.hpp)

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

// How many entries one request of this driver carries to a board advertising `max_payload_bytes`
// (512 .. 4160, docs/protocol.md 4.1): the driver sizes its chunks with these, and the bench-time
// estimate (app/hil/board_time_estimate.hpp) counts a run's requests with them.
//   PROGRAM_VERIFY entries: request batch header 12 + options 1 + count 2 + 6 per entry + boot
//     id 4 (640 at 4160 bytes);
//   READ cells of a list (one READ each) and READ_COUNTERS cells per answer: the response within
//     the payload with 6 bytes to spare (2048 and 400 at 4160 bytes).
std::size_t program_verify_entries_per_request(std::size_t max_payload_bytes);
std::size_t read_cells_per_request(std::size_t max_payload_bytes);
std::size_t counters_per_request(std::size_t max_payload_bytes);

}  // namespace metaplast::instruments
