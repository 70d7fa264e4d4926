// ArrayBoard: lifecycle (open, identify, configure, activate, safe, close), the exchange with its
// reboot detection, pulses, reads and counters. Program-and-verify and the reconciliation after a
// reboot are in array_board_program.cpp.
#include "instruments/array_board.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>

#include "common/enum_names.hpp"
#include "instruments/array_board_detail.hpp"
#include "instruments/board_identity.hpp"

namespace metaplast::instruments {

namespace p = metaplast::protocols;
using std::chrono::milliseconds;

namespace {

std::uint16_t to_mv(double volts) { return static_cast<std::uint16_t>(std::lround(volts * 1000)); }
std::uint32_t to_ns(double ns) { return static_cast<std::uint32_t>(std::llround(ns)); }

constexpr auto kFieldNames = common::enum_table<p::ConfigField>({
    {p::ConfigField::kNone, "none"},
    {p::ConfigField::kReadVoltage, "read_voltage"},
    {p::ConfigField::kTiaRange, "tia_range"},
    {p::ConfigField::kSetBitLineVoltage, "set_bit_line"},
    {p::ConfigField::kSetPulseWidth, "set_width"},
    {p::ConfigField::kResetSourceLineVoltage, "reset_source_line"},
    {p::ConfigField::kResetWordLineVoltage, "reset_word_line"},
    {p::ConfigField::kResetPulseWidth, "reset_width"},
    {p::ConfigField::kFormBitLineVoltage, "form_bit_line"},
    {p::ConfigField::kFormWordLineVoltage, "form_word_line"},
    {p::ConfigField::kFormPulseWidth, "form_width"},
    {p::ConfigField::kSetWordLineVoltage, "explicit set word_line"},
    {p::ConfigField::kLevel, "level"},
    {p::ConfigField::kMaxAttempts, "max_attempts"},
    {p::ConfigField::kWatchdogTimeout, "watchdog_timeout"},
    {p::ConfigField::kTolerance, "tolerance"},
    {p::ConfigField::kLevelGate, "level_gate"},
    {p::ConfigField::kLevelTarget, "level_target"},
});

LevelInfo level_info(const p::LevelEntry& l) {
  return {l.icc_na / 1000.0, l.gate_mv / 1000.0, l.target_conductance_us};
}

const char* field_name(std::uint32_t field) {
  return common::enum_name(kFieldNames, static_cast<p::ConfigField>(field), "unknown field");
}

void check_board_max(double value, double limit, const char* what, const char* limit_name) {
  if (value > limit) {
    std::ostringstream msg;
    msg << what << " = " << value << " exceeds the board's own limit " << limit_name << " = "
        << limit << " (reported by identify); lower the setting";
    throw LimitError(msg.str());
  }
}

void check_board_range(double value, double lo, double hi, const char* what) {
  if (value < lo || value > hi) {
    std::ostringstream msg;
    msg << what << " = " << value << " is outside the board's range " << lo << " .. " << hi
        << " (reported by identify)";
    throw LimitError(msg.str());
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Lifecycle

ArrayBoard::ArrayBoard(std::string address, StationLimits limits, RetryPolicy policy)
    : address_(std::move(address)), limits_(std::move(limits)), policy_(policy) {
  std::random_device rd;
  next_batch_id_ = (rd() & 0x3fffffffu) | 1u;  // unique per session; never 0
}

ArrayBoard::~ArrayBoard() { close(); }

void ArrayBoard::set_recorder(std::shared_ptr<FrameRecorder> recorder) {
  std::lock_guard lock(mutex_);
  recorder_ = std::move(recorder);
  if (link_) link_->set_recorder(recorder_);
}

BoardState ArrayBoard::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

const BoardInfo& ArrayBoard::info() const {
  std::lock_guard lock(mutex_);
  if (!identified_) throw LifecycleError("ArrayBoard::info: the board is not open; call open()");
  return info_;
}

const BoardSettings& ArrayBoard::settings() const {
  std::lock_guard lock(mutex_);
  if (!configured_) {
    throw LifecycleError("ArrayBoard::settings: not configured; call configure() first");
  }
  return settings_;
}

LinkStats ArrayBoard::link_stats() const {
  std::lock_guard lock(mutex_);
  return link_ ? link_->stats() : LinkStats{};
}

BoardLink& ArrayBoard::link() {
  std::lock_guard lock(mutex_);
  if (!link_) throw LifecycleError("ArrayBoard::link: the board is not open; call open()");
  return *link_;
}

void ArrayBoard::require(std::initializer_list<BoardState> allowed, const char* operation) const {
  if (std::find(allowed.begin(), allowed.end(), state_) != allowed.end()) return;
  std::string needs;
  for (auto s : allowed) needs += (needs.empty() ? "" : " or ") + std::string(to_string(s));
  std::string hint;
  switch (state_) {
    case BoardState::closed:
      hint = "call open() first";
      break;
    case BoardState::connected:
      hint = "call configure() then activate()";
      break;
    case BoardState::configured:
      hint = "call activate()";
      break;
    case BoardState::safe:
      hint = "call configure() then activate() to leave the safe state";
      break;
    case BoardState::active:
      hint = "call safe_state() first";
      break;
  }
  throw LifecycleError(std::string("ArrayBoard::") + operation + ": needs state " + needs +
                       ", the board is " + to_string(state_) + " (" + hint + ")");
}

void ArrayBoard::transition(BoardState to) {
  const auto from = state_;
  state_ = to;
  if (from != to) {
    spdlog::debug("board {}: {} -> {}", address_, to_string(from), to_string(to));
  }
}

const BoardInfo& ArrayBoard::open() {
  std::lock_guard lock(mutex_);
  require({BoardState::closed}, "open");
  link_ = std::make_unique<BoardLink>(address_, policy_);
  link_->set_recorder(recorder_);
  link_->connect();
  try {
    identify_locked(true);
  } catch (...) {
    link_->disconnect();
    link_.reset();
    throw;
  }
  transition(BoardState::connected);
  return info_;
}

const BoardInfo& ArrayBoard::identify() {
  std::lock_guard lock(mutex_);
  require({BoardState::connected, BoardState::configured, BoardState::active, BoardState::safe},
          "identify");
  identify_locked(false);
  return info_;
}

void ArrayBoard::identify_locked(bool first) {
  const auto payload = p::encode(p::IdentifyRequest{});
  const auto reply = link_->transact(p::Opcode::kIdentify, payload);
  link_->take_reconnect_count();
  if (!reply.ok()) {
    throw BoardStatusError(
        "board at " + address_ + " refused IDENTIFY: " + p::to_string(reply.status.status),
        reply.status.status, reply.status.error_detail);
  }
  auto decoded = p::decode_response<p::IdentifyResponse>(reply.frame.payload);
  if (!decoded)
    throw BoardError("malformed IDENTIFY reply from " + address_ + ": " + decoded.error);
  const auto& id = *decoded.value;
  if (id.protocol_version != p::kProtocolVersion) {
    throw BoardError("board at " + address_ + " speaks protocol version " +
                     std::to_string(id.protocol_version) + ", this host speaks " +
                     std::to_string(p::kProtocolVersion));
  }
  check_identity(id, address_);  // every advertised limit in its documented range
  if (!first && (id.serial != info_.serial || id.model != info_.model)) {
    throw BoardError("a different board answers at " + address_ + " (was " + info_.model + " " +
                     info_.serial + ", now " + id.model + " " + id.serial + ")");
  }
  const auto old_boot = info_.boot_id;
  BoardInfo info;
  info.model = id.model;
  info.serial = id.serial;
  info.firmware_version = id.firmware_version;
  info.protocol_version = id.protocol_version;
  info.rows = id.rows;
  info.cols = id.cols;
  info.adc_bits = id.adc_bits;
  info.dac_bits = id.dac_bits;
  for (const auto& t : id.tia_ranges) {
    info.tia_ranges.push_back({t.full_scale_na / 1000.0, t.nanoamps_per_code, t.zero_code});
  }
  for (const auto& l : id.levels) info.levels.push_back(level_info(l));
  const auto& bl = id.limits;
  info.limits.read_voltage_min_v = bl.read_voltage_min_mv / 1000.0;
  info.limits.read_voltage_max_v = bl.read_voltage_max_mv / 1000.0;
  info.limits.max_bl_voltage_v = bl.bit_line_max_mv / 1000.0;
  info.limits.max_sl_voltage_v = bl.source_line_max_mv / 1000.0;
  info.limits.max_wl_voltage_v = bl.word_line_max_mv / 1000.0;
  info.limits.pulse_width_min_ns = bl.pulse_width_min_ns;
  info.limits.pulse_width_max_ns = bl.pulse_width_max_ns;
  info.limits.max_attempts = bl.max_attempts;
  info.limits.watchdog_min_ms = bl.watchdog_min_ms;
  info.limits.watchdog_max_ms = bl.watchdog_max_ms;
  info.boot_id = id.boot_id;
  info.capability_flags = id.capabilities;
  info.max_payload_bytes = id.max_payload_bytes;
  info_ = std::move(info);
  identified_ = true;
  if (!first && old_boot != info_.boot_id) report_reboot(info_.boot_id, "identify");
}

void ArrayBoard::report_reboot(std::uint32_t new_boot_id, const char* operation) {
  const auto old_boot = info_.boot_id;
  info_.boot_id = new_boot_id;
  configured_ = false;  // the board lost its configuration and watchdog
  transition(BoardState::safe);
  std::optional<BatchRecord> batch;
  if (in_flight_) batch = *in_flight_;
  std::ostringstream msg;
  msg << "board at " << address_ << " was reset during " << operation << " (boot id " << std::hex
      << old_boot << " -> " << new_boot_id << std::dec << "); it is in the safe state and lost "
      << "its configuration";
  if (batch) {
    msg << "; a program-and-verify of " << batch->targets.size() << " cells was in flight ("
        << batch->cells_confirmed << " confirmed): reconcile by reading back";
  }
  spdlog::warn("{}", msg.str());
  throw BoardRebootedError(msg.str(), old_boot, new_boot_id, std::move(batch));
}

LinkReply ArrayBoard::exchange(p::Opcode opcode, std::span<const std::uint8_t> payload,
                               milliseconds execution_time, const char* operation) {
  if (!link_) throw LifecycleError(std::string("ArrayBoard::") + operation + ": not open");
  LinkReply reply;
  try {
    reply = link_->transact(opcode, payload, execution_time);
  } catch (const LinkError&) {
    // The link is gone: the board's watchdog (if armed) takes it to the safe state.
    link_->disconnect();
    transition(BoardState::closed);
    configured_ = false;
    throw;
  }
  // A new boot id means a reset. A mutating request resent across the reset lands here too, as
  // the new boot's BOOT_ID_MISMATCH refusal: nothing of it ran on the new boot.
  if (reply.status.boot_id != info_.boot_id) report_reboot(reply.status.boot_id, operation);
  if (link_->take_reconnect_count() > 0) {
    // Same boot id after a reconnect: the board kept its state; check it is the same board.
    spdlog::info("board {}: link re-established, re-identifying", address_);
    identify_locked(false);
  }
  if (!reply.ok()) {
    const auto status = reply.status.status;
    std::ostringstream msg;
    msg << "board at " << address_ << " refused " << p::to_string(opcode) << " (" << operation
        << "): " << p::to_string(status);
    if (status == p::Status::kOutOfLimits || status == p::Status::kBadArgument) {
      msg << " (field " << field_name(reply.status.error_detail) << ")";
    } else if (status == p::Status::kNotFormed || status == p::Status::kBadCellAddress) {
      msg << " (at selection index " << reply.status.error_detail << "; form the cells first)";
    } else if (status == p::Status::kBatchOutOfOrder) {
      msg << " (board has " << reply.status.error_detail << " entries of that batch)";
    } else if (status == p::Status::kBootIdMismatch) {
      // With an unchanged boot id this is a host bug (the request named another boot).
      msg << " (the request named boot id " << std::hex << reply.status.error_detail
          << ", the board's is " << reply.status.boot_id << std::dec << ")";
    } else if (status == p::Status::kWatchdogTripped) {
      msg << " (host was silent longer than the watchdog timeout; configure() again)";
      configured_ = false;
      transition(BoardState::safe);
    }
    throw BoardStatusError(msg.str(), status, reply.status.error_detail);
  }
  return reply;
}

p::Configuration to_wire(const BoardSettings& s) {
  p::Configuration c;
  c.read_voltage_mv = to_mv(s.read_voltage_v);
  c.tia_range = s.tia_range;
  c.set_bit_line_mv = to_mv(s.set_bl_voltage_v);
  c.set_width_ns = to_ns(s.set_pulse_width_ns);
  c.reset_source_line_mv = to_mv(s.reset_sl_voltage_v);
  c.reset_word_line_mv = to_mv(s.reset_wl_voltage_v);
  c.reset_width_ns = to_ns(s.reset_pulse_width_ns);
  c.form_bit_line_mv = to_mv(s.form_bl_voltage_v);
  c.form_word_line_mv = to_mv(s.form_wl_voltage_v);
  c.form_width_ns = to_ns(s.form_pulse_width_ns);
  return c;
}

void ArrayBoard::configure(const BoardSettings& s) {
  std::lock_guard lock(mutex_);
  require({BoardState::connected, BoardState::configured, BoardState::active, BoardState::safe},
          "configure");
  check_station_limits(s, limits_);  // host limits first, nothing sent yet
  const auto& b = info_.limits;
  check_board_range(s.read_voltage_v, b.read_voltage_min_v, b.read_voltage_max_v, "read_voltage_v");
  check_board_max(s.set_bl_voltage_v, b.max_bl_voltage_v, "set_bl_voltage_v", "bit_line_max");
  check_board_max(s.form_bl_voltage_v, b.max_bl_voltage_v, "form_bl_voltage_v", "bit_line_max");
  check_board_max(s.reset_sl_voltage_v, b.max_sl_voltage_v, "reset_sl_voltage_v",
                  "source_line_max");
  check_board_max(s.reset_wl_voltage_v, b.max_wl_voltage_v, "reset_wl_voltage_v", "word_line_max");
  check_board_max(s.form_wl_voltage_v, b.max_wl_voltage_v, "form_wl_voltage_v", "word_line_max");
  for (auto [w, name] : {std::pair{s.set_pulse_width_ns, "set_pulse_width_ns"},
                         std::pair{s.reset_pulse_width_ns, "reset_pulse_width_ns"},
                         std::pair{s.form_pulse_width_ns, "form_pulse_width_ns"}}) {
    check_board_range(w, b.pulse_width_min_ns, b.pulse_width_max_ns, name);
  }
  if (s.tia_range >= info_.tia_ranges.size()) {
    throw LimitError("tia_range = " + std::to_string(s.tia_range) + " but the board has " +
                     std::to_string(info_.tia_ranges.size()) + " TIA ranges");
  }
  if (s.watchdog_ms != 0) {
    if (!info_.has(p::capability::kWatchdog)) {
      throw LimitError("watchdog_ms = " + std::to_string(s.watchdog_ms) +
                       " but the board has no watchdog (capability WATCHDOG)");
    }
    check_board_range(s.watchdog_ms, b.watchdog_min_ms, b.watchdog_max_ms, "watchdog_ms");
  }
  apply_level_table(s);
  call<p::EmptyBody>(p::ConfigureRequest{to_wire(s)}, "configure");
  settings_ = s;
  configured_ = true;
  if (info_.has(p::capability::kWatchdog)) {
    // Always sent: arms (or disarms with 0) and acknowledges a trip left by an earlier session.
    call<p::EmptyBody>(p::WatchdogArmRequest{s.watchdog_ms}, "configure (watchdog)");
  }
  transition(BoardState::configured);
}

void ArrayBoard::apply_level_table(const BoardSettings& s) {
  const auto& gates = s.level_gate_voltages_v;
  if (!info_.has(p::capability::kLevelTable)) {
    if (gates.empty()) return;  // the board's own table is the only one
    throw LimitError(
        "level_gate_voltages_v is set but the board has no level table to set "
        "(capability LEVEL_TABLE, SET_LEVELS): leave the level settings empty");
  }
  p::SetLevelsRequest request;
  for (std::size_t i = 0; i < gates.size(); ++i) {
    const std::string key = "level_gate_voltages_v[" + std::to_string(i) + "]";
    check_board_max(gates[i], info_.limits.max_wl_voltage_v, key.c_str(), "word_line_max");
    if (!(s.level_targets_us[i] > info_.levels.front().target_conductance_us)) {
      throw LimitError("level_targets_us[" + std::to_string(i) +
                       "] = " + std::to_string(s.level_targets_us[i]) +
                       " uS is not above the board's LCS target " +
                       std::to_string(info_.levels.front().target_conductance_us) + " uS");
    }
    request.levels.push_back({to_mv(gates[i]), static_cast<float>(s.level_targets_us[i])});
  }
  const auto table = call<p::LevelTable>(request, "configure (level table)");
  std::vector<LevelInfo> levels;
  for (const auto& l : table.levels) levels.push_back(level_info(l));
  // The board's own table may hold levels above the limit: check_level refuses their use.
  for (std::size_t k = 1; k < levels.size() && !gates.empty(); ++k) {
    if (levels[k].icc_ua <= limits_.max_compliance_ua) continue;
    call<p::LevelTable>(p::SetLevelsRequest{}, "configure (level table restored)");
    std::ostringstream msg;
    msg << "level " << k << "'s gate " << levels[k].gate_voltage_v
        << " V gives I_CC = " << levels[k].icc_ua
        << " uA on this board, above the station limit max_compliance_ua = "
        << limits_.max_compliance_ua << " (" << limits_.station_name
        << "); the board's own table is back in force. Lower the gate or raise the limit";
    throw LimitError(msg.str());
  }
  info_.levels = std::move(levels);
}

protocols::Configuration ArrayBoard::reported_configuration() {
  std::lock_guard lock(mutex_);
  require({BoardState::connected, BoardState::configured, BoardState::active, BoardState::safe},
          "get configuration");
  return call<p::Configuration>(p::GetConfigurationRequest{}, "get configuration");
}

void ArrayBoard::activate() {
  std::lock_guard lock(mutex_);
  require({BoardState::configured}, "activate");
  transition(BoardState::active);
}

void ArrayBoard::safe_state() {
  std::lock_guard lock(mutex_);
  require({BoardState::connected, BoardState::configured, BoardState::active, BoardState::safe},
          "safe_state");
  call<p::EmptyBody>(p::SafeStateRequest{}, "safe_state");
  transition(BoardState::safe);
}

void ArrayBoard::close() noexcept {
  std::lock_guard lock(mutex_);
  if (state_ == BoardState::closed && !link_) return;
  if (link_ && link_->connected()) {
    try {
      // Short policy: a dead board must not hold up shutdown.
      call<p::EmptyBody>(p::SafeStateRequest{}, "close (safe state)");
      if (configured_ && settings_.watchdog_ms != 0) {
        call<p::EmptyBody>(p::WatchdogArmRequest{0}, "close (disarm watchdog)");
      }
    } catch (const std::exception& e) {
      spdlog::warn("board {}: could not send safe state on close: {}", address_, e.what());
    }
  }
  if (link_) link_->disconnect();
  link_.reset();
  configured_ = false;
  transition(BoardState::closed);
}

// ---------------------------------------------------------------------------------------------
// Helpers

std::uint16_t ArrayBoard::index_of(const Cell& cell) const {
  return static_cast<std::uint16_t>(cell.row * info_.cols + cell.col);
}

Cell ArrayBoard::cell_of(std::uint16_t index) const {
  return {static_cast<std::uint16_t>(index / info_.cols),
          static_cast<std::uint16_t>(index % info_.cols)};
}

void ArrayBoard::check_cells(const std::vector<Cell>& cells, const char* operation) const {
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (cells[i].row >= info_.rows || cells[i].col >= info_.cols) {
      throw std::out_of_range(std::string("ArrayBoard::") + operation + ": cell " +
                              std::to_string(i) + " (row " + std::to_string(cells[i].row) +
                              ", col " + std::to_string(cells[i].col) + ") is outside the " +
                              std::to_string(info_.rows) + " x " + std::to_string(info_.cols) +
                              " array");
    }
  }
}

void ArrayBoard::check_level(Level level, bool allow_lcs, const char* operation) const {
  if (level >= info_.levels.size() || (!allow_lcs && level == kLcsLevel)) {
    throw std::invalid_argument(std::string("ArrayBoard::") + operation + ": level " +
                                std::to_string(level) + " is not in " + (allow_lcs ? "0" : "1") +
                                " .. " + std::to_string(info_.levels.size() - 1));
  }
  const double icc = info_.levels[level].icc_ua;
  if (icc > limits_.max_compliance_ua) {
    throw LimitError(std::string("ArrayBoard::") + operation + ": level " + std::to_string(level) +
                     " uses I_CC = " + std::to_string(icc) +
                     " uA, above the station limit max_compliance_ua = " +
                     std::to_string(limits_.max_compliance_ua) + " (" + limits_.station_name + ")");
  }
}

std::uint32_t ArrayBoard::new_batch_id() {
  const auto id = next_batch_id_++;
  if (next_batch_id_ == 0) next_batch_id_ = 1;
  return id;
}

milliseconds ArrayBoard::execution_allowance(std::size_t pulses, std::size_t reads) const {
  // Generous: pulse widths are microseconds at most, a settled ADC read some tens of us.
  const double width_ns = std::max({settings_.set_pulse_width_ns, settings_.reset_pulse_width_ns,
                                    settings_.form_pulse_width_ns, 1000.0});
  const double us =
      static_cast<double>(pulses) * (width_ns / 1000.0 + 50.0) + static_cast<double>(reads) * 50.0;
  return milliseconds(static_cast<long>(us / 1000.0) + 1);
}

double ArrayBoard::code_to_conductance_us(std::uint16_t code, std::uint8_t tia_range) const {
  const auto& t = info_.tia_ranges.at(tia_range);
  const double read_mv = configured_ ? std::round(settings_.read_voltage_v * 1000) : 200.0;
  return (static_cast<double>(code) - t.zero_code) * t.nanoamps_per_code / read_mv;
}

double ArrayBoard::level_conductance_us(Level level) const {
  return info_.levels.at(level).target_conductance_us;
}

p::VerifyBand ArrayBoard::verify_band(Level level, double band_us) const {
  return p::verify_band(level, level_conductance_us(level), p::tolerance_on_wire_grid(band_us));
}

// ---------------------------------------------------------------------------------------------
// Pulses

void ArrayBoard::apply_pulses(const std::vector<Cell>& cells, const Pulse& pulse,
                              const char* operation, std::vector<std::uint32_t>* batch_ids,
                              std::vector<std::size_t>* unformed) {
  require({BoardState::active}, operation);
  check_cells(cells, operation);
  // Chunk: list selections within both the protocol and the board's payload limit
  // (batch header 12 + selection 3 + 2 per cell + SET extras 10 + expected boot id 4).
  const std::size_t by_payload = (info_.max_payload_bytes - 32) / 2;
  const std::size_t chunk = std::min(p::kMaxListCells, by_payload);
  std::vector<std::size_t> order(cells.size());  // indices into `cells` still to pulse
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::size_t pos = 0, batch_base = 0;
  auto batch_id = new_batch_id();
  if (batch_ids) batch_ids->push_back(batch_id);
  while (pos < order.size()) {
    const auto n = std::min(chunk, order.size() - pos);
    std::vector<std::uint16_t> indices(n);
    for (std::size_t i = 0; i < n; ++i) indices[i] = index_of(cells[order[pos + i]]);
    p::BatchHeader batch{batch_id, static_cast<std::uint32_t>(pos - batch_base),
                         static_cast<std::uint32_t>(order.size() - batch_base)};
    const auto allowance = execution_allowance(n, pulse.opcode == p::Opcode::kForm ? n * 8 : 0);
    p::PulseResponse done;
    try {
      // Every chunk names the boot it was written for: if the board resets before it answers,
      // the resend is refused by the new boot (BOOT_ID_MISMATCH, new boot id -> reported as a
      // reboot) instead of being executed a second time.
      if (pulse.opcode == p::Opcode::kForm) {
        done = call<p::PulseResponse>(
            p::FormRequest{batch, p::Selection::list(std::move(indices)), info_.boot_id}, operation,
            allowance);
      } else if (pulse.opcode == p::Opcode::kReset) {
        done = call<p::PulseResponse>(
            p::ResetRequest{batch, p::Selection::list(std::move(indices)), info_.boot_id},
            operation, allowance);
      } else {
        p::SetRequest request;
        request.batch = batch;
        request.selection = p::Selection::list(std::move(indices));
        request.expected_boot_id = info_.boot_id;
        if (pulse.explicit_pulse) {
          request.mode = p::SetMode::kExplicit;
          request.word_line_mv = to_mv(pulse.explicit_pulse->wl_voltage_v);
          request.bit_line_mv = to_mv(pulse.explicit_pulse->bl_voltage_v);
          request.width_ns = to_ns(pulse.explicit_pulse->pulse_width_ns);
        } else {
          request.mode = p::SetMode::kLevel;
          request.level = pulse.level;
        }
        done = call<p::PulseResponse>(request, operation, allowance);
      }
    } catch (const BoardStatusError& e) {
      // An unformed cell refuses the whole chunk before anything is pulsed: leave the cell out
      // and carry on with the rest as a new batch (the old one stays incomplete on the board).
      if (!unformed || e.status() != p::Status::kNotFormed || e.detail() >= n) throw;
      unformed->push_back(order[pos + e.detail()]);
      order.erase(order.begin() + static_cast<std::ptrdiff_t>(pos + e.detail()));
      batch_base = pos;
      batch_id = new_batch_id();
      if (batch_ids) batch_ids->push_back(batch_id);
      continue;
    }
    if (done.cells_done != n) {
      throw BoardError(std::string("ArrayBoard::") + operation + ": board did " +
                       std::to_string(done.cells_done) + " of " + std::to_string(n) + " cells");
    }
    pos += n;
  }
}

void ArrayBoard::form(const std::vector<Cell>& cells) {
  std::lock_guard lock(mutex_);
  apply_pulses(cells, Pulse{p::Opcode::kForm, 0, {}, settings_.form_pulse_width_ns}, "form",
               nullptr, nullptr);
}

void ArrayBoard::set(const std::vector<Cell>& cells, Level level) {
  std::lock_guard lock(mutex_);
  require({BoardState::active}, "set");
  check_level(level, false, "set");
  apply_pulses(cells, Pulse{p::Opcode::kSet, level, {}, settings_.set_pulse_width_ns}, "set",
               nullptr, nullptr);
}

void ArrayBoard::set_explicit(const std::vector<Cell>& cells, const PulseSpec& pulse) {
  std::lock_guard lock(mutex_);
  require({BoardState::active}, "set_explicit");
  check_station_limits(pulse, limits_);
  if (!info_.has(p::capability::kExplicitSet)) {
    throw BoardError("board at " + address_ +
                     " does not accept explicit SET pulses "
                     "(capability EXPLICIT_SET); use set(cells, level)");
  }
  const auto& b = info_.limits;
  check_board_max(pulse.wl_voltage_v, b.max_wl_voltage_v, "pulse wl_voltage_v", "word_line_max");
  check_board_max(pulse.bl_voltage_v, b.max_bl_voltage_v, "pulse bl_voltage_v", "bit_line_max");
  check_board_range(pulse.pulse_width_ns, b.pulse_width_min_ns, b.pulse_width_max_ns,
                    "pulse_width_ns");
  apply_pulses(cells, Pulse{p::Opcode::kSet, 0, pulse, pulse.pulse_width_ns}, "set_explicit",
               nullptr, nullptr);
}

void ArrayBoard::reset(const std::vector<Cell>& cells) {
  std::lock_guard lock(mutex_);
  apply_pulses(cells, Pulse{p::Opcode::kReset, 0, {}, settings_.reset_pulse_width_ns}, "reset",
               nullptr, nullptr);
}

// ---------------------------------------------------------------------------------------------
// Reads and counters: multi-frame, fetched by offset

std::vector<std::uint16_t> ArrayBoard::read_codes(const p::Selection& selection,
                                                  std::uint8_t& tia_range,
                                                  const ProgressCallback& progress) {
  const std::size_t total = selection.size();
  const std::size_t per_frame = read_cells_per_request(info_.max_payload_bytes);
  std::vector<std::uint16_t> codes;
  codes.reserve(total);
  while (codes.size() < total) {
    p::ReadRequest request{selection, static_cast<std::uint16_t>(codes.size()),
                           static_cast<std::uint16_t>(std::min(per_frame, total - codes.size()))};
    const auto reply =
        call<p::ReadResponse>(request, "read", execution_allowance(0, request.max_count));
    if (reply.offset != codes.size() || reply.codes.empty() ||
        reply.codes.size() > total - codes.size()) {
      throw BoardError("board at " + address_ + " answered READ at offset " +
                       std::to_string(codes.size()) + " with offset " +
                       std::to_string(reply.offset) + " and " + std::to_string(reply.codes.size()) +
                       " codes");
    }
    tia_range = reply.tia_range;
    codes.insert(codes.end(), reply.codes.begin(), reply.codes.end());
    if (progress) progress(codes.size(), total);
  }
  return codes;
}

std::vector<CellReading> ArrayBoard::read(const std::vector<Cell>& cells) {
  std::lock_guard lock(mutex_);
  require({BoardState::active}, "read");
  check_cells(cells, "read");
  std::vector<CellReading> out;
  out.reserve(cells.size());
  const std::size_t chunk = read_cells_per_request(info_.max_payload_bytes);
  for (std::size_t offset = 0; offset < cells.size(); offset += chunk) {
    const auto n = std::min(chunk, cells.size() - offset);
    std::vector<std::uint16_t> indices(n);
    for (std::size_t i = 0; i < n; ++i) indices[i] = index_of(cells[offset + i]);
    std::uint8_t tia = 0;
    const auto codes = read_codes(p::Selection::list(std::move(indices)), tia, {});
    for (std::size_t i = 0; i < n; ++i) {
      out.push_back({cells[offset + i], codes[i], tia, code_to_conductance_us(codes[i], tia)});
    }
  }
  return out;
}

ConductanceMap ArrayBoard::read_region(std::uint16_t row0, std::uint16_t col0, std::uint16_t rows,
                                       std::uint16_t cols, const ProgressCallback& progress) {
  require({BoardState::active}, "read");
  if (rows == 0 || cols == 0 || row0 + rows > info_.rows || col0 + cols > info_.cols) {
    throw std::out_of_range(
        "ArrayBoard::read_block: block at (" + std::to_string(row0) + ", " + std::to_string(col0) +
        ") of " + std::to_string(rows) + " x " + std::to_string(cols) + " is not inside the " +
        std::to_string(info_.rows) + " x " + std::to_string(info_.cols) + " array");
  }
  ConductanceMap map;
  map.row0 = row0;
  map.col0 = col0;
  map.rows = rows;
  map.cols = cols;
  map.codes = read_codes(p::Selection::block(row0, col0, rows, cols), map.tia_range, progress);
  map.conductance_us.resize(map.codes.size());
  for (std::size_t i = 0; i < map.codes.size(); ++i) {
    map.conductance_us[i] = code_to_conductance_us(map.codes[i], map.tia_range);
  }
  return map;
}

ConductanceMap ArrayBoard::read_row(std::uint16_t row) {
  std::lock_guard lock(mutex_);
  return read_region(row, 0, 1, info_.cols, {});
}

ConductanceMap ArrayBoard::read_block(std::uint16_t row0, std::uint16_t col0, std::uint16_t rows,
                                      std::uint16_t cols, const ProgressCallback& progress) {
  std::lock_guard lock(mutex_);
  return read_region(row0, col0, rows, cols, progress);
}

ConductanceMap ArrayBoard::read_array(const ProgressCallback& progress) {
  std::lock_guard lock(mutex_);
  return read_region(0, 0, info_.rows, info_.cols, progress);
}

std::vector<CellCounters> ArrayBoard::read_counters(const p::Selection& selection,
                                                    const ProgressCallback& progress) {
  if (!info_.has(p::capability::kCounters)) {
    throw BoardError("board at " + address_ + " has no pulse counters (capability COUNTERS)");
  }
  const std::size_t total = selection.size();
  const std::size_t per_frame = counters_per_request(info_.max_payload_bytes);
  std::vector<CellCounters> out;
  out.reserve(total);
  while (out.size() < total) {
    p::ReadCountersRequest request{
        selection, static_cast<std::uint16_t>(out.size()),
        static_cast<std::uint16_t>(std::min(per_frame, total - out.size()))};
    const auto reply = call<p::ReadCountersResponse>(request, "counters");
    if (reply.offset != out.size() || reply.counters.empty() ||
        reply.counters.size() > total - out.size()) {
      throw BoardError("board at " + address_ + " answered READ_COUNTERS at offset " +
                       std::to_string(out.size()) + " with offset " + std::to_string(reply.offset));
    }
    for (const auto& c : reply.counters) {
      const auto index = selection.cell_at(out.size(), info_.cols);
      out.push_back({cell_of(index), c.set_pulses, c.reset_pulses, c.form_pulses});
    }
    if (progress) progress(out.size(), total);
  }
  return out;
}

std::uint32_t ArrayBoard::uptime_ms() {
  std::lock_guard lock(mutex_);
  require({BoardState::connected, BoardState::configured, BoardState::active, BoardState::safe},
          "uptime_ms");
  return call<p::GetStatusResponse>(p::GetStatusRequest{}, "get status").uptime_ms;
}

std::vector<CellCounters> ArrayBoard::counters(const std::vector<Cell>& cells) {
  std::lock_guard lock(mutex_);
  require({BoardState::connected, BoardState::configured, BoardState::active, BoardState::safe},
          "counters");
  check_cells(cells, "counters");
  std::vector<CellCounters> out;
  out.reserve(cells.size());
  const std::size_t chunk = std::min(p::kMaxListCells, (info_.max_payload_bytes - 16) / 2);
  for (std::size_t offset = 0; offset < cells.size(); offset += chunk) {
    const auto n = std::min(chunk, cells.size() - offset);
    std::vector<std::uint16_t> indices(n);
    for (std::size_t i = 0; i < n; ++i) indices[i] = index_of(cells[offset + i]);
    auto part = read_counters(p::Selection::list(std::move(indices)), {});
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

std::vector<CellCounters> ArrayBoard::counters_array(const ProgressCallback& progress) {
  std::lock_guard lock(mutex_);
  require({BoardState::connected, BoardState::configured, BoardState::active, BoardState::safe},
          "counters");
  return read_counters(p::Selection::array(info_.rows, info_.cols), progress);
}

BatchStatus ArrayBoard::batch_status(std::uint32_t batch_id) {
  std::lock_guard lock(mutex_);
  require({BoardState::connected, BoardState::configured, BoardState::active, BoardState::safe},
          "batch_status");
  if (!info_.has(p::capability::kBatchStatus)) return BatchStatus::unknown;
  const auto reply = call<p::BatchStatusResponse>(p::BatchStatusRequest{batch_id}, "batch_status");
  switch (reply.state) {
    case p::BatchState::kDone:
      return BatchStatus::done;
    case p::BatchState::kInProgress:
      return BatchStatus::in_progress;
    case p::BatchState::kUnknown:
      return BatchStatus::unknown;
  }
  return BatchStatus::unknown;
}

}  // namespace metaplast::instruments
