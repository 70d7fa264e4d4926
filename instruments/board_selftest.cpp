// The selftest as data: one small function per check, run in order from kChecks (as libsigrok
// keeps its model tables). The order matters: the probes share one link and one board, and the
// watchdog check, which trips the board into the safe state, comes last.
#include "instruments/board_selftest.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>
#include <thread>

#include "drivers/transport.hpp"

namespace metaplast::instruments {

namespace p = metaplast::protocols;
using std::chrono::milliseconds;

namespace {

// What every check sees: the board (configured with the host's defaults and active), its link
// for raw frames below ArrayBoard, what identify reported before the checks, and how long to wait
// for the reply to a raw frame.
struct SelftestContext {
  ArrayBoard& board;
  BoardLink& link;
  const BoardInfo& info;
  const SelftestOptions& options;
  milliseconds timeout;
};

// Whether a check runs on this board: `omit` leaves it out of the report (the board lacks the
// feature, or the caller turned the check off); `skip` reports it passed with `detail` as the
// reason.
struct Applicability {
  enum class Kind { run, omit, skip } kind = Kind::run;
  std::string detail;
};

// A check returns whether it passed and says in `detail` what it saw (and expected, on failure).
using CheckFunction = bool (*)(const SelftestContext&, std::string& detail);
using ApplicabilityFunction = Applicability (*)(const SelftestContext&);

struct NamedCheck {
  const char* name;
  CheckFunction run;
  ApplicabilityFunction applies = nullptr;  // null: every board
  bool sends_pulses = false;  // sends a RESET (executed, or one the board must refuse)
};

// ---------------------------------------------------------------------------------------------
// Helpers shared by the checks

std::string status_text(const LinkReply& r) {
  std::ostringstream s;
  s << p::to_string(r.status.status) << " (detail " << r.status.error_detail << ")";
  return s.str();
}

bool expect_status(const std::optional<LinkReply>& reply, p::Status expected, std::string& detail) {
  if (!reply) {
    detail = std::string("no reply; expected ") + p::to_string(expected);
    return false;
  }
  detail = "answered " + status_text(*reply) + ", expected " + p::to_string(expected);
  return reply->status.status == expected;
}

// A one-cell RESET for the current boot, in a batch of its own: batch id `salt` ^ boot id (never
// 0: `if_zero` then), so that each probe's batch differs from the others' and from the host's.
p::ResetRequest probe_reset(const BoardInfo& info, const Cell& cell, std::uint32_t salt,
                            std::uint32_t if_zero) {
  p::ResetRequest reset;
  reset.batch = {salt ^ info.boot_id, 0, 1};
  if (reset.batch.batch_id == 0) reset.batch.batch_id = if_zero;
  reset.selection = p::Selection::cell(cell.row, cell.col, info.cols);
  reset.expected_boot_id = info.boot_id;
  return reset;
}

// The probe cell's counters before a probe, if the board counts pulses.
std::optional<CellCounters> probe_counters(const SelftestContext& c) {
  if (!c.info.has(p::capability::kCounters)) return std::nullopt;
  return c.board.counters({c.options.probe_cell}).at(0);
}

// Ends a probe's detail with the counters' proof that its RESET ran once if it was answered ok,
// and not at all otherwise (without counters the probe cannot prove it, and passes).
bool reset_counted_once(const SelftestContext& c, const std::optional<CellCounters>& before,
                        bool answered_ok, const std::string& summary, std::string& d) {
  if (!before) {
    d = summary + " (no counters to prove non-execution)";
    return true;
  }
  const auto after = c.board.counters({c.options.probe_cell}).at(0);
  const auto delta = after.reset_pulses - before->reset_pulses;
  const std::uint32_t expected = answered_ok ? 1 : 0;
  std::ostringstream s;
  s << summary << "; reset counter +" << delta << " (expected +" << expected << ")";
  d = s.str();
  return delta == expected;
}

// ---------------------------------------------------------------------------------------------
// The checks, in the order of kChecks

bool check_identify_fields(const SelftestContext& c, std::string& d) {
  const auto& info = c.info;
  std::ostringstream s;
  bool ok = true;
  auto need = [&](bool cond, const std::string& what) {
    if (!cond) {
      ok = false;
      s << what << "; ";
    }
  };
  need(info.protocol_version == p::kProtocolVersion, "protocol_version != 1");
  need(info.rows > 0 && info.cols > 0 && info.cells() <= 65536, "bad geometry");
  need(info.adc_bits >= 8 && info.adc_bits <= 16, "adc_bits outside 8..16");
  need(!info.tia_ranges.empty(), "no TIA range");
  for (const auto& t : info.tia_ranges) need(t.nanoamps_per_code > 0, "nanoamps_per_code <= 0");
  need(info.levels.size() >= 2 && info.levels[0].icc_ua == 0, "level 0 must be the LCS");
  for (std::size_t i = 2; i < info.levels.size(); ++i) {
    need(info.levels[i].icc_ua > info.levels[i - 1].icc_ua &&
             info.levels[i].target_conductance_us > info.levels[i - 1].target_conductance_us,
         "levels not increasing at " + std::to_string(i));
  }
  need(info.limits.read_voltage_min_v <= info.limits.read_voltage_max_v, "read range inverted");
  need(info.limits.pulse_width_min_ns <= info.limits.pulse_width_max_ns, "width range inverted");
  need(info.limits.max_attempts >= 1 && info.limits.max_attempts <= 127,
       "max_attempts outside 1..127");
  need(info.boot_id != 0, "boot_id is 0");
  need(info.max_payload_bytes >= p::kMinAdvertisedPayloadBytes &&
           info.max_payload_bytes <= p::kMaxPayloadBytes,
       "max_payload_bytes outside 512..4160");
  s << info.model << " " << info.serial << " fw " << info.firmware_version << ", " << info.rows
    << "x" << info.cols << ", " << int(info.adc_bits) << "-bit ADC, " << info.levels.size()
    << " levels, capabilities 0x" << std::hex << info.capability_flags;
  d = s.str();
  return ok;
}

bool check_bad_crc(const SelftestContext& c, std::string& d) {
  const auto seq = c.link.take_sequence();
  p::FrameHeader h;
  h.opcode = static_cast<std::uint8_t>(p::Opcode::kGetStatus);
  h.sequence = seq;
  auto frame = p::encode_frame(h, {});
  auto bad = frame;
  bad.back() ^= 0x5A;  // CRC-32 wrong, header intact
  const auto r1 = c.link.send_raw_and_wait(bad, seq, c.timeout);
  if (!expect_status(r1, p::Status::kBadCrc, d)) return false;
  const auto r2 = c.link.send_raw_and_wait(frame, seq, c.timeout);
  if (!expect_status(r2, p::Status::kOk, d)) {
    d = "the corrected frame with the same seq was " + d;
    return false;
  }
  d = "bad_crc, then the corrected frame (same seq) executed";
  return true;
}

bool check_repeated_sequence(const SelftestContext& c, std::string& d) {
  const auto before = probe_counters(c);
  const auto seq = c.link.take_sequence();
  const auto reset = probe_reset(c.info, c.options.probe_cell, 0x5e1f7e57u, 1);
  const auto frame = p::encode_request_frame(seq, reset);
  const auto r1 = c.link.send_raw_and_wait(frame, seq, c.timeout);
  const auto r2 = c.link.send_raw_and_wait(frame, seq, c.timeout);
  if (!r1 || !r2) {
    d = "no reply to the request or to its repetition";
    return false;
  }
  if (p::encode_frame(r1->frame.header, r1->frame.payload) !=
      p::encode_frame(r2->frame.header, r2->frame.payload)) {
    d = "the repetition's reply differs from the first reply";
    return false;
  }
  return reset_counted_once(c, before, r1->ok(),
                            "RESET answered " + status_text(*r1) + " twice, byte-identical", d);
}

// What a resend looks like after a reset the host has not noticed yet: the new boot must refuse
// it, not run it (docs/protocol.md section 5).
bool check_boot_id_mismatch(const SelftestContext& c, std::string& d) {
  const auto before = probe_counters(c);
  auto reset = probe_reset(c.info, c.options.probe_cell, 0x0b0071d5u, 3);
  std::uint16_t seq = 0;
  for (const std::uint32_t stale : {c.info.boot_id ^ 0x5a5a5a5au, 0u}) {
    reset.expected_boot_id = stale;
    seq = c.link.take_sequence();
    const auto r = c.link.send_raw_and_wait(p::encode_request_frame(seq, reset), seq, c.timeout);
    if (!expect_status(r, p::Status::kBootIdMismatch, d)) {
      d = "expected_boot_id " + std::to_string(stale) + ": " + d;
      return false;
    }
    if (r->status.error_detail != stale) {
      d = "boot_id_mismatch detail " + std::to_string(r->status.error_detail) +
          " is not the boot id the request carried (" + std::to_string(stale) + ")";
      return false;
    }
  }
  // Not cached: the same sequence number with the board's boot id is executed, not answered
  // sequence_reused.
  reset.expected_boot_id = c.info.boot_id;
  const auto fixed = c.link.send_raw_and_wait(p::encode_request_frame(seq, reset), seq, c.timeout);
  if (!fixed) {
    d = "no reply to the corrected request";
    return false;
  }
  if (fixed->status.status == p::Status::kSequenceReused ||
      fixed->status.status == p::Status::kBootIdMismatch) {
    d = "the corrected request (same seq, right boot id) answered " + status_text(*fixed) +
        ": the refusal was cached";
    return false;
  }
  return reset_counted_once(c, before, fixed->ok(),
                            "stale and zero boot ids refused boot_id_mismatch; the corrected "
                            "request (same seq) answered " +
                                status_text(*fixed),
                            d);
}

bool check_sequence_reused(const SelftestContext& c, std::string& d) {
  const auto seq = c.link.take_sequence();
  const auto a = p::encode_request_frame(seq, p::GetStatusRequest{});
  const auto r1 = c.link.send_raw_and_wait(a, seq, c.timeout);
  if (!expect_status(r1, p::Status::kOk, d)) return false;
  p::ReadRequest read{p::Selection::cell(0, 0, c.info.cols), 0, 1};
  const auto b = p::encode_request_frame(seq, read);
  return expect_status(c.link.send_raw_and_wait(b, seq, c.timeout), p::Status::kSequenceReused, d);
}

// The current (station-checked) settings with the read voltage 1 mV below the board's minimum,
// which the board must refuse. Below, not above the maximum: station limits are maxima, so a
// lower bias is allowed by every station (a board's maximum + 1 mV may not be), and the minimum
// is >= 1 mV for every board that passed identify (check_identity).
bool check_configure_refused(const SelftestContext& c, std::string& d) {
  p::ConfigureRequest request{to_wire(c.board.settings())};
  request.config.read_voltage_mv =
      static_cast<std::uint16_t>(std::lround(c.info.limits.read_voltage_min_v * 1000) - 1);
  const auto reply = c.link.call(request);
  if (!expect_status(reply, p::Status::kOutOfLimits, d)) {
    d = "read voltage " + std::to_string(request.config.read_voltage_mv) + " mV: " + d;
    return false;
  }
  if (reply.status.error_detail != static_cast<std::uint32_t>(p::ConfigField::kReadVoltage)) {
    d += "; detail should name field 1 (read_voltage)";
    return false;
  }
  const auto current = c.link.call(p::GetConfigurationRequest{});
  const auto config = p::decode_response<p::Configuration>(current.frame.payload);
  if (!config || *config.value == request.config) {
    d = "the refused configuration was applied anyway";
    return false;
  }
  d = "read voltage " + std::to_string(request.config.read_voltage_mv) +
      " mV (1 below the board's minimum): out_of_limits (field read_voltage), previous "
      "configuration kept";
  return true;
}

bool check_read_by_offset(const SelftestContext& c, std::string& d) {
  const auto sel = p::Selection::array(c.info.rows, c.info.cols);
  const std::size_t total = sel.size();
  std::size_t offset = 0, frames = 0;
  while (offset < total) {
    const auto reply = c.link.call(p::ReadRequest{sel, static_cast<std::uint16_t>(offset), 2048});
    if (!reply.ok()) {
      d = "READ at offset " + std::to_string(offset) + " answered " + status_text(reply);
      return false;
    }
    const auto body = p::decode_response<p::ReadResponse>(reply.frame.payload);
    if (!body || body.value->offset != offset || body.value->codes.empty()) {
      d = "bad READ body at offset " + std::to_string(offset);
      return false;
    }
    offset += body.value->codes.size();
    ++frames;
    if (reply.more_fragments() != (offset < total)) {
      d = "MORE_FRAGMENTS wrong at offset " + std::to_string(offset);
      return false;
    }
  }
  // A fragment asked for again by offset is served again (non-destructive).
  const auto again = c.link.call(p::ReadRequest{sel, 2048, 2048});
  const auto beyond = c.link.call(
      p::ReadRequest{sel, static_cast<std::uint16_t>(std::min<std::size_t>(total, 65535)), 1});
  if (!again.ok()) {
    d = "re-request by offset 2048 answered " + status_text(again);
    return false;
  }
  if (beyond.status.status != p::Status::kBadArgument) {
    d = "offset beyond the selection answered " + status_text(beyond) + ", expected bad_argument";
    return false;
  }
  d = std::to_string(total) + " codes in " + std::to_string(frames) +
      " frames; re-request by offset ok; offset beyond the end refused";
  return true;
}

bool check_unknown_opcode(const SelftestContext& c, std::string& d) {
  const auto reply = c.link.transact(static_cast<p::Opcode>(0x7E), {});
  return expect_status(reply, p::Status::kUnknownOpcode, d);
}

bool check_unsupported_version(const SelftestContext& c, std::string& d) {
  const auto seq = c.link.take_sequence();
  p::FrameHeader h;
  h.version = 2;
  h.opcode = static_cast<std::uint8_t>(p::Opcode::kGetStatus);
  h.sequence = seq;
  return expect_status(c.link.send_raw_and_wait(p::encode_frame(h, {}), seq, c.timeout),
                       p::Status::kUnsupportedVersion, d);
}

// READ is mandatory, so every board must parse it (an optional opcode would rightly be answered
// not_supported first): a valid one-cell READ minus its last byte.
bool check_truncated_payload(const SelftestContext& c, std::string& d) {
  auto truncated = p::encode(p::ReadRequest{p::Selection::cell(0, 0, c.info.cols), 0, 1});
  truncated.pop_back();
  return expect_status(c.link.transact(p::Opcode::kRead, truncated), p::Status::kBadLength, d);
}

// The watchdog check waits three of the board's shortest timeouts: bounded here, not by the board.
constexpr std::uint32_t kLongestWatchdogWaitMs = 5000;

Applicability watchdog_applies(const SelftestContext& c) {
  if (!c.options.check_watchdog || !c.info.has(p::capability::kWatchdog)) {
    return {Applicability::Kind::omit, ""};
  }
  if (c.info.limits.watchdog_min_ms > kLongestWatchdogWaitMs) {
    return {Applicability::Kind::skip, "skipped: the board's shortest watchdog timeout (" +
                                           std::to_string(c.info.limits.watchdog_min_ms) +
                                           " ms) is above " +
                                           std::to_string(kLongestWatchdogWaitMs) + " ms"};
  }
  return {};
}

bool check_watchdog_trip(const SelftestContext& c, std::string& d) {
  const auto ms = std::max<std::uint32_t>(c.info.limits.watchdog_min_ms, 50);
  auto arm = c.link.call(p::WatchdogArmRequest{ms});
  if (!expect_status(arm, p::Status::kOk, d)) return false;
  std::this_thread::sleep_for(milliseconds(3 * ms + 100));
  const auto st = c.link.call(p::GetStatusRequest{});
  const auto status = p::decode_response<p::GetStatusResponse>(st.frame.payload);
  if (!status || !(status.value->state_flags & p::board_state::kWatchdogTripped) ||
      !(status.value->state_flags & p::board_state::kSafe)) {
    d = "after silence the status does not show WATCHDOG_TRIPPED and SAFE";
    return false;
  }
  const auto reset = probe_reset(c.info, Cell{0, 0}, 0x3a7c0001u, 2);
  if (!expect_status(c.link.call(reset), p::Status::kWatchdogTripped, d)) {
    d = "mutating request after the trip: " + d;
    return false;
  }
  const auto ack = c.link.call(p::WatchdogArmRequest{0});
  if (!expect_status(ack, p::Status::kOk, d)) return false;
  d = "tripped after " + std::to_string(ms) +
      " ms of silence, safe, RESET refused "
      "watchdog_tripped, acknowledged by WATCHDOG_ARM 0";
  return true;
}

Applicability level_table_applies(const SelftestContext& c) {
  if (!c.info.has(p::capability::kLevelTable)) {
    return {Applicability::Kind::skip, "skipped: the board has no LEVEL_TABLE capability"};
  }
  return {};
}

// SET_LEVELS (docs/protocol.md 4.12): a gate above word_line_max is refused out_of_limits
// (field 16) and changes nothing; no entries answer the board's own table, as configured.
bool check_level_table(const SelftestContext& c, std::string& d) {
  const auto above_mv = std::lround(c.info.limits.max_wl_voltage_v * 1000) + 1;
  if (above_mv <= 0xFFFF) {
    const p::SetLevelsRequest too_high{{{static_cast<std::uint16_t>(above_mv), 1e3f}}};
    const auto refused = c.link.call(too_high);
    if (!expect_status(refused, p::Status::kOutOfLimits, d)) {
      d = "gate " + std::to_string(above_mv) + " mV: " + d;
      return false;
    }
    if (refused.status.error_detail != static_cast<std::uint32_t>(p::ConfigField::kLevelGate)) {
      d = "gate above word_line_max: the detail should name field 16 (level_gate)";
      return false;
    }
  }
  const auto own = c.link.call(p::SetLevelsRequest{});
  if (!expect_status(own, p::Status::kOk, d)) return false;
  const auto table = p::decode_response<p::LevelTable>(own.frame.payload);
  const auto& configured = c.board.info().levels;
  bool same = table && table.value->levels.size() == configured.size();
  for (std::size_t i = 0; same && i < configured.size(); ++i) {
    const auto& l = table.value->levels[i];
    same = l.gate_mv == std::lround(configured[i].gate_voltage_v * 1000) &&
           l.target_conductance_us == static_cast<float>(configured[i].target_conductance_us);
  }
  if (!same) {
    d = "SET_LEVELS without entries did not answer the board's own table as configured";
    return false;
  }
  d = "gate " + std::to_string(above_mv) +
      " mV refused out_of_limits (field level_gate); the "
      "board's own table of " +
      std::to_string(configured.size()) + " levels back with no entries";
  return true;
}

// ---------------------------------------------------------------------------------------------
// The table

const NamedCheck kChecks[] = {
    {"identify fields are sane", check_identify_fields},
    {"bad CRC answered bad_crc and not cached", check_bad_crc},
    {"repeated sequence answered from the cache, not executed twice", check_repeated_sequence,
     nullptr, true},
    {"mutating request for another boot refused boot_id_mismatch, not executed",
     check_boot_id_mismatch, nullptr, true},
    {"same sequence with a different request answered sequence_reused", check_sequence_reused},
    {"configure outside the board's limits refused", check_configure_refused},
    {"whole-array read fetched by offset with MORE_FRAGMENTS", check_read_by_offset},
    {"unknown opcode answered unknown_opcode", check_unknown_opcode},
    {"unsupported version answered unsupported_version", check_unsupported_version},
    {"truncated payload answered bad_length", check_truncated_payload},
    {"level table: a gate beyond the board's limit refused, the board's own table restorable",
     check_level_table, level_table_applies},
    {"watchdog trips to the safe state and refuses mutating requests", check_watchdog_trip,
     watchdog_applies, true},
};

// One check: an exception fails it, with the exception's message as the detail.
SelftestCheck run_check(const NamedCheck& check, const SelftestContext& context) {
  SelftestCheck result{check.name, false, ""};
  try {
    std::string detail;
    result.passed = check.run(context, detail);
    result.detail = detail;
  } catch (const std::exception& e) {
    result.passed = false;
    result.detail = std::string("exception: ") + e.what();
  }
  return result;
}

}  // namespace

std::vector<SelftestCheck> run_selftest(ArrayBoard& board, const SelftestOptions& options) {
  auto& link = board.link();
  const auto info = board.info();  // as identified; the identify check reads only this
  const SelftestContext context{board, link, info, options,
                                link.policy().reply_timeout + milliseconds(200)};
  // Bring the board to a known configuration (the host's defaults); a failure here is not a
  // check's but the caller's (it throws).
  board.configure(BoardSettings{});
  board.activate();
  std::vector<SelftestCheck> out;
  for (const auto& check : kChecks) {
    const auto applies = check.applies ? check.applies(context) : Applicability{};
    if (applies.kind == Applicability::Kind::omit) continue;
    if (applies.kind == Applicability::Kind::skip) {
      out.push_back({check.name, true, applies.detail});
      continue;
    }
    if (check.sends_pulses && !options.allow_pulses) {
      out.push_back({check.name, true,
                     "not run: it sends a RESET to cell " + std::to_string(options.probe_cell.row) +
                         "," + std::to_string(options.probe_cell.col) +
                         " (executed or to be refused); needs permission to pulse",
                     true});
      continue;
    }
    out.push_back(run_check(check, context));
  }
  board.safe_state();
  return out;
}

}  // namespace metaplast::instruments
