// Board wire protocol, message layer: every request and response of the array test board as a
// plain struct with its exact wire fields (integers in the units their names say), plus the
// payload encoders/decoders. The normative description is docs/protocol.md ("Messages").
//
// Conventions: all multi-byte fields little-endian; float32 = IEEE-754 binary32 LE.
// Cell index = row * cols + col (cols = 128 on the 128 x 128 array), u16 on the wire.
// Decoders check structure only (lengths, enum values, counts within the protocol limits);
// range checks against the board's geometry and limits are the board's (and host's) job.
// Pure functions, no I/O, no device state.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "protocols/frame.hpp"

namespace metaplast::protocols {

enum class Opcode : std::uint8_t {
  kIdentify = 0x01,
  kGetStatus = 0x02,
  kConfigure = 0x03,
  kGetConfiguration = 0x04,
  kSetLevels = 0x05,
  kForm = 0x10,
  kSet = 0x11,
  kReset = 0x12,
  kRead = 0x13,
  kProgramVerify = 0x14,
  kReadCounters = 0x15,
  kBatchStatus = 0x16,
  kSafeState = 0x20,
  kWatchdogArm = 0x21,
  kWatchdogKick = 0x22,
};

// First byte of every response payload.
enum class Status : std::uint8_t {
  kOk = 0x00,
  kBadCrc = 0x01,     // frame CRC-32 mismatch (never cached; retry with the same seq)
  kBadLength = 0x02,  // payload length/structure does not match the opcode
  kUnknownOpcode = 0x03,
  kOutOfLimits = 0x04,         // detail = ConfigField of the offending value
  kBusy = 0x05,                // board cannot take the request now (never cached; retry later)
  kNotFormed = 0x06,           // detail = index (in selection order) of the first unformed cell
  kBadCellAddress = 0x07,      // detail = index (in selection order) of the first bad cell
  kWatchdogTripped = 0x08,     // mutating ops refused until WATCHDOG_ARM acknowledges the trip
  kUnsupportedVersion = 0x09,  // header version != 1 (detail = highest supported version)
  kBadArgument = 0x0A,         // bad enum value, level, zero count, offset beyond selection...
  kBatchOutOfOrder = 0x0B,     // batch_offset != cells done for that batch (detail = cells done)
  kSequenceReused = 0x0C,      // same seq as the cached reply but different request bytes
  kNotSupported = 0x0D,        // opcode known but the capability is absent
  kInternalError = 0x0E,
  // FORM/SET/RESET/PROGRAM_VERIFY whose expected_boot_id is not the board's boot id (a resend
  // that outlived a reset, or 0): nothing executed, never cached (detail = the id it carried).
  kBootIdMismatch = 0x0F,
};

// Capability flags (IdentifyResponse::capabilities).
namespace capability {
inline constexpr std::uint32_t kProgramVerify = 1u << 0;  // has PROGRAM_VERIFY opcode
inline constexpr std::uint32_t kTrace = 1u << 1;          // PROGRAM_VERIFY can return a trace
inline constexpr std::uint32_t kCounters = 1u << 2;       // has READ_COUNTERS
inline constexpr std::uint32_t kWatchdog = 1u << 3;       // has WATCHDOG_ARM / KICK
inline constexpr std::uint32_t kBatchStatus = 1u << 4;    // has BATCH_STATUS
inline constexpr std::uint32_t kExplicitSet = 1u << 5;    // SET accepts explicit voltages
inline constexpr std::uint32_t kLevelTable = 1u << 6;     // has SET_LEVELS
}  // namespace capability

// Identifies the offending field in an kOutOfLimits / kBadArgument error detail.
enum class ConfigField : std::uint32_t {
  kNone = 0,
  kReadVoltage = 1,
  kTiaRange = 2,
  kSetBitLineVoltage = 3,
  kSetPulseWidth = 4,
  kResetSourceLineVoltage = 5,
  kResetWordLineVoltage = 6,
  kResetPulseWidth = 7,
  kFormBitLineVoltage = 8,
  kFormWordLineVoltage = 9,
  kFormPulseWidth = 10,
  kSetWordLineVoltage = 11,  // explicit SET gate voltage
  kLevel = 12,
  kMaxAttempts = 13,
  kWatchdogTimeout = 14,
  kTolerance = 15,
  kLevelGate = 16,    // SET_LEVELS gate_mv
  kLevelTarget = 17,  // SET_LEVELS target_conductance_us
};

// ---- Protocol limits (a board may advertise smaller ones in IdentifyResponse) ----
inline constexpr std::size_t kMaxListCells = 2048;             // cells in a CELL_LIST selection
inline constexpr std::size_t kMaxReadCodesPerResponse = 2048;  // READ: 8 frames per array
inline constexpr std::size_t kMaxCountersPerResponse = 400;    // READ_COUNTERS
inline constexpr std::size_t kMaxProgramVerifyEntries = 640;   // PROGRAM_VERIFY per request
inline constexpr std::size_t kMaxStringBytes = 32;             // identify strings
inline constexpr std::size_t kMaxTiaRanges = 8;
inline constexpr std::size_t kMaxLevels = 16;           // level table entries
inline constexpr std::uint8_t kMaxAttemptsLimit = 127;  // 7 bits in the result byte
// Smallest max_payload_bytes a board may advertise: every message with one cell or entry, and
// the largest IDENTIFY response (390 bytes), fit in it (docs/protocol.md 4.1).
inline constexpr std::size_t kMinAdvertisedPayloadBytes = 512;
// PROGRAM_VERIFY tolerance_us_x100: 0.01 .. 100 uS; outside it bad_argument, field kTolerance.
inline constexpr std::uint16_t kMinToleranceUsX100 = 1;
inline constexpr std::uint16_t kMaxToleranceUsX100 = 10'000;

// The "board limit" of READ and READ_COUNTERS (docs/protocol.md 4.5, 4.7): the most entries one
// response carries for a board advertising `max_payload_bytes`. Response prefix 5, READ body
// 5 + 2 per code, READ_COUNTERS body 4 + 10 per cell.
constexpr std::size_t read_codes_per_response(std::size_t max_payload_bytes) {
  return max_payload_bytes < 10 + 2
             ? 0
             : std::min<std::size_t>(kMaxReadCodesPerResponse, (max_payload_bytes - 10) / 2);
}
constexpr std::size_t counters_per_response(std::size_t max_payload_bytes) {
  return max_payload_bytes < 9 + 10
             ? 0
             : std::min<std::size_t>(kMaxCountersPerResponse, (max_payload_bytes - 9) / 10);
}

// error_detail of a BUSY answer.
namespace busy_detail {
inline constexpr std::uint32_t kUnspecified = 0;
inline constexpr std::uint32_t kServingAnotherHost = 1;  // a TCP board already has a host
}  // namespace busy_detail

// ---- Common pieces ----

// Which cells an operation applies to. Cells are visited in "selection order": list order for
// kCellList, row-major inside the block for kBlock.
enum class SelectionKind : std::uint8_t { kCellList = 0, kBlock = 1 };

struct Selection {
  SelectionKind kind = SelectionKind::kCellList;
  std::vector<std::uint16_t> cells;                      // kCellList: 1..kMaxListCells cell indices
  std::uint16_t row0 = 0, col0 = 0, rows = 0, cols = 0;  // kBlock: rows, cols >= 1

  static Selection cell(std::uint16_t row, std::uint16_t col, std::uint16_t array_cols = 128);
  static Selection list(std::vector<std::uint16_t> cell_indices);
  static Selection block(std::uint16_t row0, std::uint16_t col0, std::uint16_t rows,
                         std::uint16_t cols);
  static Selection row(std::uint16_t row, std::uint16_t array_cols = 128);
  static Selection array(std::uint16_t array_rows = 128, std::uint16_t array_cols = 128);
  // Number of cells selected (list length or rows * cols).
  std::size_t size() const;
  // Cell index of the i-th selected cell (i < size()), for an array `array_cols` wide.
  std::uint16_t cell_at(std::size_t i, std::uint16_t array_cols = 128) const;
  bool operator==(const Selection&) const = default;
};

// Carried by every mutating request (FORM, SET, RESET, PROGRAM_VERIFY). A batch may span several
// requests ("chunks"); chunks are sent in order, batch_offset = entries of the batch sent before.
// Those four requests also end with `expected_boot_id` (see carries_expected_boot_id()).
struct BatchHeader {
  std::uint32_t batch_id = 0;      // chosen by the host, != 0, unique per host session
  std::uint32_t batch_offset = 0;  // index of this chunk's first entry within the batch
  std::uint32_t batch_total = 0;   // entries in the whole batch (>= offset + chunk size)
  bool operator==(const BatchHeader&) const = default;
};

// Prefix of every response payload: status u8, boot_id u32, and on error detail u32.
struct ResponseStatus {
  Status status = Status::kOk;
  std::uint32_t boot_id = 0;       // changes on every power-up/reset of the board
  std::uint32_t error_detail = 0;  // only on the wire when status != kOk
  bool operator==(const ResponseStatus&) const = default;
};

struct EmptyBody {
  bool operator==(const EmptyBody&) const = default;
};

// ---- IDENTIFY (0x01) ----
struct IdentifyRequest {
  static constexpr Opcode kOpcode = Opcode::kIdentify;
  bool operator==(const IdentifyRequest&) const = default;
};

// One TIA range: conductance_us = (code - zero_code) * nanoamps_per_code / read_voltage_mv.
struct TiaRange {
  std::uint32_t full_scale_na = 0;
  float nanoamps_per_code = 0.0f;
  std::uint16_t zero_code = 0;
  bool operator==(const TiaRange&) const = default;
};

// One programming level. Level 0 = LCS (icc_na = 0, gate_mv = 0); 1..8 = HCS by I_CC.
struct LevelEntry {
  std::uint32_t icc_na = 0;            // compliance current
  std::uint16_t gate_mv = 0;           // word-line voltage that sets this I_CC
  float target_conductance_us = 0.0f;  // program-and-verify target
  bool operator==(const LevelEntry&) const = default;
};

// The board's safe operating limits (inclusive).
struct BoardLimits {
  std::uint16_t read_voltage_min_mv = 0, read_voltage_max_mv = 0;
  std::uint16_t bit_line_max_mv = 0;
  std::uint16_t source_line_max_mv = 0;
  std::uint16_t word_line_max_mv = 0;
  std::uint32_t pulse_width_min_ns = 0, pulse_width_max_ns = 0;
  std::uint8_t max_attempts = 0;  // per PROGRAM_VERIFY entry, <= 127
  std::uint32_t watchdog_min_ms = 0, watchdog_max_ms = 0;
  bool operator==(const BoardLimits&) const = default;
};

struct IdentifyResponse {
  std::uint8_t protocol_version = kProtocolVersion;
  std::string model;  // <= 32 bytes each
  std::string serial;
  std::string firmware_version;
  std::uint16_t rows = 128, cols = 128;
  std::uint8_t adc_bits = 0;
  std::uint8_t dac_bits = 0;
  std::vector<TiaRange> tia_ranges;  // index = TIA range number
  std::vector<LevelEntry> levels;    // index = level number; [0] = LCS
  BoardLimits limits;
  std::uint32_t boot_id = 0;
  std::uint32_t capabilities = 0;                      // capability::* bits
  std::uint16_t max_payload_bytes = kMaxPayloadBytes;  // board's receive/send maximum
  bool operator==(const IdentifyResponse&) const = default;
};

// ---- GET_STATUS (0x02) ----
struct GetStatusRequest {
  static constexpr Opcode kOpcode = Opcode::kGetStatus;
  bool operator==(const GetStatusRequest&) const = default;
};

namespace board_state {
inline constexpr std::uint8_t kSafe = 0x01;  // all lines grounded/floated
inline constexpr std::uint8_t kWatchdogArmed = 0x02;
inline constexpr std::uint8_t kWatchdogTripped = 0x04;  // until WATCHDOG_ARM acknowledges
inline constexpr std::uint8_t kConfigured = 0x08;       // CONFIGURE accepted since boot
}  // namespace board_state

struct GetStatusResponse {
  std::uint8_t state_flags = 0;  // board_state::* bits
  std::uint32_t boot_id = 0;
  std::uint32_t uptime_ms = 0;  // wraps after ~49 days
  std::uint32_t watchdog_timeout_ms = 0;
  bool operator==(const GetStatusResponse&) const = default;
};

// ---- CONFIGURE (0x03), GET_CONFIGURATION (0x04) ----
struct Configuration {
  std::uint16_t read_voltage_mv = 200;
  std::uint8_t tia_range = 0;
  std::uint16_t set_bit_line_mv = 0;  // SET by level: gate from the level table
  std::uint32_t set_width_ns = 0;
  std::uint16_t reset_source_line_mv = 0;
  std::uint16_t reset_word_line_mv = 0;
  std::uint32_t reset_width_ns = 0;
  std::uint16_t form_bit_line_mv = 0;
  std::uint16_t form_word_line_mv = 0;
  std::uint32_t form_width_ns = 0;
  bool operator==(const Configuration&) const = default;
};

struct ConfigureRequest {
  static constexpr Opcode kOpcode = Opcode::kConfigure;
  Configuration config;
  bool operator==(const ConfigureRequest&) const = default;
};

struct GetConfigurationRequest {
  static constexpr Opcode kOpcode = Opcode::kGetConfiguration;
  bool operator==(const GetConfigurationRequest&) const = default;
};
// Response body: Configuration.

// ---- SET_LEVELS (0x05, capability LEVEL_TABLE) ----
// Replaces the HCS entries (levels 1..n) of the level table; the LCS entry (level 0) stays. The
// board derives each level's I_CC from its gate. No entries: back to the board's own table.
// Volatile: a reboot restores the board's own table (docs/protocol.md 4.12).
struct LevelSetting {
  std::uint16_t gate_mv = 0;           // SET word-line voltage of this level
  float target_conductance_us = 0.0f;  // its program-and-verify target
  bool operator==(const LevelSetting&) const = default;
};

struct SetLevelsRequest {
  static constexpr Opcode kOpcode = Opcode::kSetLevels;
  std::vector<LevelSetting> levels;  // HCS levels 1..n, n = 0..kMaxLevels - 1
  bool operator==(const SetLevelsRequest&) const = default;
};

// Response body of SET_LEVELS: the whole table now in force, as IDENTIFY reports it.
struct LevelTable {
  std::vector<LevelEntry> levels;  // [0] = LCS
  bool operator==(const LevelTable&) const = default;
};

// ---- FORM (0x10), SET (0x11), RESET (0x12) ----
struct FormRequest {
  static constexpr Opcode kOpcode = Opcode::kForm;
  BatchHeader batch;
  Selection selection;
  std::uint32_t expected_boot_id = 0;  // the board's boot id as the host last saw it (last field)
  bool operator==(const FormRequest&) const = default;
};

enum class SetMode : std::uint8_t { kLevel = 0, kExplicit = 1 };

struct SetRequest {
  static constexpr Opcode kOpcode = Opcode::kSet;
  BatchHeader batch;
  Selection selection;
  SetMode mode = SetMode::kLevel;
  std::uint8_t level = 1;  // kLevel: 1..levels-1 (gate from the level table)
  std::uint16_t word_line_mv = 0, bit_line_mv = 0;  // kExplicit
  std::uint32_t width_ns = 0;                       // kExplicit
  std::uint32_t expected_boot_id = 0;               // see FormRequest
  bool operator==(const SetRequest&) const = default;
};

struct ResetRequest {
  static constexpr Opcode kOpcode = Opcode::kReset;
  BatchHeader batch;
  Selection selection;
  std::uint32_t expected_boot_id = 0;  // see FormRequest
  bool operator==(const ResetRequest&) const = default;
};

// Response body of FORM, SET, RESET.
struct PulseResponse {
  std::uint32_t batch_id = 0;
  std::uint16_t cells_done = 0;  // cells of this request processed (= selection size on ok)
  bool operator==(const PulseResponse&) const = default;
};

// ---- READ (0x13) ----
struct ReadRequest {
  static constexpr Opcode kOpcode = Opcode::kRead;
  Selection selection;
  std::uint16_t offset = 0;     // first cell (in selection order) to return
  std::uint16_t max_count = 0;  // 1..kMaxReadCodesPerResponse
  bool operator==(const ReadRequest&) const = default;
};

// kMoreFragments is set in the frame header when offset + codes.size() < selection size.
struct ReadResponse {
  std::uint8_t tia_range = 0;
  std::uint16_t offset = 0;
  std::vector<std::uint16_t> codes;  // raw ADC codes, selection order
  bool operator==(const ReadResponse&) const = default;
};

// ---- PROGRAM_VERIFY (0x14) ----
struct ProgramVerifyEntry {
  std::uint16_t cell = 0;
  std::uint8_t level = 0;               // 0 = LCS, 1..8 = HCS level
  std::uint8_t max_attempts = 0;        // 1..127 programming pulses
  std::uint16_t tolerance_us_x100 = 0;  // band half-width, 0.01 uS units
  bool operator==(const ProgramVerifyEntry&) const = default;
};

namespace program_verify_options {
inline constexpr std::uint8_t kTrace = 0x01;  // return the per-attempt trace
}

struct ProgramVerifyRequest {
  static constexpr Opcode kOpcode = Opcode::kProgramVerify;
  BatchHeader batch;
  std::uint8_t options = 0;                 // program_verify_options::*
  std::vector<ProgramVerifyEntry> entries;  // 1..kMaxProgramVerifyEntries
  std::uint32_t expected_boot_id = 0;       // see FormRequest
  bool operator==(const ProgramVerifyRequest&) const = default;
};

struct ProgramVerifyResult {
  std::uint16_t code = 0;     // final verify read, raw ADC code
  std::uint8_t attempts = 0;  // programming pulses applied (0..127)
  bool passed = false;
  bool operator==(const ProgramVerifyResult&) const = default;
};

enum class PulseKind : std::uint8_t { kSet = 1, kReset = 2 };

struct TraceEntry {
  std::uint16_t entry = 0;  // index into this request's entries
  PulseKind pulse = PulseKind::kSet;
  std::uint16_t code = 0;  // verify read after that pulse
  bool operator==(const TraceEntry&) const = default;
};

struct ProgramVerifyResponse {
  std::uint32_t batch_id = 0;
  std::uint8_t tia_range = 0;
  std::vector<ProgramVerifyResult> results;  // one per request entry, same order
  bool has_trace = false;                    // trace section present on the wire
  bool trace_truncated = false;
  std::vector<TraceEntry> trace;  // entry order, then attempt order
  bool operator==(const ProgramVerifyResponse&) const = default;
};

// ---- READ_COUNTERS (0x15) ----
struct ReadCountersRequest {
  static constexpr Opcode kOpcode = Opcode::kReadCounters;
  Selection selection;
  std::uint16_t offset = 0;
  std::uint16_t max_count = 0;  // 1..kMaxCountersPerResponse
  bool operator==(const ReadCountersRequest&) const = default;
};

struct CellCounters {
  std::uint32_t set_pulses = 0;    // since manufacture (non-volatile)
  std::uint32_t reset_pulses = 0;  // since manufacture (non-volatile)
  std::uint16_t form_pulses = 0;
  bool operator==(const CellCounters&) const = default;
};

// kMoreFragments set when offset + counters.size() < selection size.
struct ReadCountersResponse {
  std::uint16_t offset = 0;
  std::vector<CellCounters> counters;
  bool operator==(const ReadCountersResponse&) const = default;
};

// ---- BATCH_STATUS (0x16) ----
struct BatchStatusRequest {
  static constexpr Opcode kOpcode = Opcode::kBatchStatus;
  std::uint32_t batch_id = 0;
  bool operator==(const BatchStatusRequest&) const = default;
};

enum class BatchState : std::uint8_t { kUnknown = 0, kInProgress = 1, kDone = 2 };

struct BatchStatusResponse {
  std::uint32_t batch_id = 0;
  BatchState state = BatchState::kUnknown;
  std::uint32_t cells_done = 0;  // entries of the batch fully executed
  std::uint32_t cells_total = 0;
  bool operator==(const BatchStatusResponse&) const = default;
};

// ---- SAFE_STATE (0x20), WATCHDOG_ARM (0x21), WATCHDOG_KICK (0x22) ----
struct SafeStateRequest {
  static constexpr Opcode kOpcode = Opcode::kSafeState;
  bool operator==(const SafeStateRequest&) const = default;
};

struct WatchdogArmRequest {
  static constexpr Opcode kOpcode = Opcode::kWatchdogArm;
  std::uint32_t timeout_ms = 0;  // 0 = disarm; also acknowledges a trip
  bool operator==(const WatchdogArmRequest&) const = default;
};

struct WatchdogKickRequest {
  static constexpr Opcode kOpcode = Opcode::kWatchdogKick;
  bool operator==(const WatchdogKickRequest&) const = default;
};
// Response body of CONFIGURE, SAFE_STATE, WATCHDOG_ARM, WATCHDOG_KICK: EmptyBody.

// ---- Decoding results ----

// A decoded value, or the status a board would answer for that payload (kBadLength for a
// truncated/overlong payload, kBadArgument for an invalid enum/count) with a readable reason.
template <class T>
struct Decoded {
  std::optional<T> value;
  Status status = Status::kOk;
  std::string error;
  explicit operator bool() const { return value.has_value(); }
};

// ---- Request payloads ----
std::vector<std::uint8_t> encode(const IdentifyRequest&);
std::vector<std::uint8_t> encode(const GetStatusRequest&);
std::vector<std::uint8_t> encode(const ConfigureRequest&);
std::vector<std::uint8_t> encode(const GetConfigurationRequest&);
std::vector<std::uint8_t> encode(const SetLevelsRequest&);
std::vector<std::uint8_t> encode(const FormRequest&);
std::vector<std::uint8_t> encode(const SetRequest&);
std::vector<std::uint8_t> encode(const ResetRequest&);
std::vector<std::uint8_t> encode(const ReadRequest&);
std::vector<std::uint8_t> encode(const ProgramVerifyRequest&);
std::vector<std::uint8_t> encode(const ReadCountersRequest&);
std::vector<std::uint8_t> encode(const BatchStatusRequest&);
std::vector<std::uint8_t> encode(const SafeStateRequest&);
std::vector<std::uint8_t> encode(const WatchdogArmRequest&);
std::vector<std::uint8_t> encode(const WatchdogKickRequest&);

// decode<T>(payload) for every request struct above (specialisations declared below).
template <class T>
Decoded<T> decode(std::span<const std::uint8_t> payload);
template <>
Decoded<IdentifyRequest> decode<IdentifyRequest>(std::span<const std::uint8_t> payload);
template <>
Decoded<GetStatusRequest> decode<GetStatusRequest>(std::span<const std::uint8_t> payload);
template <>
Decoded<ConfigureRequest> decode<ConfigureRequest>(std::span<const std::uint8_t> payload);
template <>
Decoded<GetConfigurationRequest> decode<GetConfigurationRequest>(
    std::span<const std::uint8_t> payload);
template <>
Decoded<SetLevelsRequest> decode<SetLevelsRequest>(std::span<const std::uint8_t> payload);
template <>
Decoded<FormRequest> decode<FormRequest>(std::span<const std::uint8_t> payload);
template <>
Decoded<SetRequest> decode<SetRequest>(std::span<const std::uint8_t> payload);
template <>
Decoded<ResetRequest> decode<ResetRequest>(std::span<const std::uint8_t> payload);
template <>
Decoded<ReadRequest> decode<ReadRequest>(std::span<const std::uint8_t> payload);
template <>
Decoded<ProgramVerifyRequest> decode<ProgramVerifyRequest>(std::span<const std::uint8_t> payload);
template <>
Decoded<ReadCountersRequest> decode<ReadCountersRequest>(std::span<const std::uint8_t> payload);
template <>
Decoded<BatchStatusRequest> decode<BatchStatusRequest>(std::span<const std::uint8_t> payload);
template <>
Decoded<SafeStateRequest> decode<SafeStateRequest>(std::span<const std::uint8_t> payload);
template <>
Decoded<WatchdogArmRequest> decode<WatchdogArmRequest>(std::span<const std::uint8_t> payload);
template <>
Decoded<WatchdogKickRequest> decode<WatchdogKickRequest>(std::span<const std::uint8_t> payload);

// ---- Response payloads: ResponseStatus prefix + body (body only when status == kOk) ----
std::vector<std::uint8_t> encode_response(const ResponseStatus&, const IdentifyResponse&);
std::vector<std::uint8_t> encode_response(const ResponseStatus&, const GetStatusResponse&);
std::vector<std::uint8_t> encode_response(const ResponseStatus&, const Configuration&);
std::vector<std::uint8_t> encode_response(const ResponseStatus&, const LevelTable&);
std::vector<std::uint8_t> encode_response(const ResponseStatus&, const PulseResponse&);
std::vector<std::uint8_t> encode_response(const ResponseStatus&, const ReadResponse&);
std::vector<std::uint8_t> encode_response(const ResponseStatus&, const ProgramVerifyResponse&);
std::vector<std::uint8_t> encode_response(const ResponseStatus&, const ReadCountersResponse&);
std::vector<std::uint8_t> encode_response(const ResponseStatus&, const BatchStatusResponse&);
std::vector<std::uint8_t> encode_response(const ResponseStatus&, const EmptyBody&);
// Error response: status (!= kOk), boot_id, error_detail. No body.
std::vector<std::uint8_t> encode_error_response(const ResponseStatus&);

// Reads the prefix of any response payload. Fails (kBadLength) if it is truncated, or if an
// error response carries bytes beyond its 9 (status, boot_id, detail).
Decoded<ResponseStatus> decode_response_status(std::span<const std::uint8_t> payload);
// Decodes the body of an ok response (prefix checked and skipped). Fails with the response's
// own status if that is not kOk.
template <class Body>
Decoded<Body> decode_response(std::span<const std::uint8_t> payload);
template <>
Decoded<IdentifyResponse> decode_response<IdentifyResponse>(std::span<const std::uint8_t> payload);
template <>
Decoded<GetStatusResponse> decode_response<GetStatusResponse>(
    std::span<const std::uint8_t> payload);
template <>
Decoded<Configuration> decode_response<Configuration>(std::span<const std::uint8_t> payload);
template <>
Decoded<LevelTable> decode_response<LevelTable>(std::span<const std::uint8_t> payload);
template <>
Decoded<PulseResponse> decode_response<PulseResponse>(std::span<const std::uint8_t> payload);
template <>
Decoded<ReadResponse> decode_response<ReadResponse>(std::span<const std::uint8_t> payload);
template <>
Decoded<ProgramVerifyResponse> decode_response<ProgramVerifyResponse>(
    std::span<const std::uint8_t> payload);
template <>
Decoded<ReadCountersResponse> decode_response<ReadCountersResponse>(
    std::span<const std::uint8_t> payload);
template <>
Decoded<BatchStatusResponse> decode_response<BatchStatusResponse>(
    std::span<const std::uint8_t> payload);
template <>
Decoded<EmptyBody> decode_response<EmptyBody>(std::span<const std::uint8_t> payload);

// ---- Whole frames ----
// Request frame: flags 0, version 1.
template <class Request>
std::vector<std::uint8_t> encode_request_frame(std::uint16_t sequence, const Request& request) {
  FrameHeader header;
  header.opcode = static_cast<std::uint8_t>(Request::kOpcode);
  header.sequence = sequence;
  return encode_frame(header, encode(request));
}

// Response frame: flags kResponse, plus kError when status != ok, plus kMoreFragments if asked.
std::vector<std::uint8_t> encode_response_frame(std::uint16_t sequence, Opcode opcode,
                                                std::span<const std::uint8_t> response_payload,
                                                bool more_fragments = false);

// ---- The boot id guard of mutating requests (docs/protocol.md 3 and 5) ----
// FORM, SET, RESET and PROGRAM_VERIFY end with u32 expected_boot_id: the board executes them only
// if it equals its current boot id (boot ids are never 0, so 0 is always refused), else answers
// kBootIdMismatch. A resend that outlives a board reset is thereby refused, not re-executed.
bool carries_expected_boot_id(Opcode opcode);
// The payload of such a request with its expected_boot_id replaced (replay tools: recorded
// requests sent to a board that has another boot id). nullopt for another opcode or a payload
// that does not decode.
std::optional<std::vector<std::uint8_t>> with_expected_boot_id(
    Opcode opcode, std::span<const std::uint8_t> payload, std::uint32_t boot_id);

// Human-readable names (for logs and error messages).
const char* to_string(Opcode);
const char* to_string(Status);
const char* to_string(BatchState);

}  // namespace metaplast::protocols
