#include "sim/board_firmware.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <thread>
#include <utility>

#include "devices/random.hpp"
#include "protocols/verify_rule.hpp"

namespace metaplast::sim {

namespace p = metaplast::protocols;

namespace {

constexpr std::uint8_t kAdcBits = 14;
constexpr std::uint16_t kAdcMaxCode = (1u << kAdcBits) - 1;
constexpr std::uint16_t kZeroCode = 64;  // the TIA's offset: a few codes below zero current
constexpr std::int64_t kBootTimeNs = 50'000'000;
constexpr std::size_t kBatchMemory = 64;  // protocol promises at least 16

bool touches_array(p::Opcode op) {
  return op == p::Opcode::kForm || op == p::Opcode::kSet || op == p::Opcode::kReset ||
         op == p::Opcode::kRead || op == p::Opcode::kProgramVerify;
}

std::uint16_t to_mv(double volts) {
  return static_cast<std::uint16_t>(std::lround(std::clamp(volts, 0.0, 65.0) * 1000.0));
}

std::uint32_t mix_boot_id(std::uint64_t seed, std::uint64_t boot_count) {
  const std::uint64_t z = devices::RandomStream::mix64(seed * devices::RandomStream::kGolden +
                                                       boot_count * 0xbf58476d1ce4e5b9ULL + 1);
  const auto id = static_cast<std::uint32_t>(z ^ (z >> 32));
  return id == 0 ? 1 : id;
}

}  // namespace

BoardFirmware::BoardFirmware(Chip chip, FirmwareOptions options)
    : chip_(std::move(chip)), options_(std::move(options)), fault_rng_(options_.faults.seed) {
  if (!options_.clock) options_.clock = [] { return std::chrono::steady_clock::now(); };
  if (options_.timing.baud == 0) throw std::invalid_argument("sim board: baud rate must be > 0");
  if (!(options_.clock_scale >= 0.0) || options_.clock_scale > 1e9) {
    throw std::invalid_argument("sim board: clock scale must be in [0, 1e9]");
  }
  clock_synced_ = options_.clock();
  const devices::Calibration& cal = chip_.model().calibration();
  if (cal.hcs_levels.size() + 1 > p::kMaxLevels) {
    throw std::invalid_argument("sim board: the calibration has " +
                                std::to_string(cal.hcs_levels.size()) +
                                " HCS levels; the protocol carries at most 15");
  }
  // Three TIA ranges a decade apart: ~49 uA, ~4.9 uA, ~490 nA full scale (245, 24.5, 2.45 uS at
  // 0.2 V). nanoamps_per_code is a float on the wire; the board computes with that same value.
  for (float nanoamps_per_code : {3.0f, 0.3f, 0.03f}) {
    p::TiaRange range;
    range.nanoamps_per_code = nanoamps_per_code;
    range.zero_code = kZeroCode;
    range.full_scale_na =
        static_cast<std::uint32_t>(std::lround(nanoamps_per_code * (kAdcMaxCode - kZeroCode)));
    tia_ranges_.push_back(range);
  }
  board_levels_.push_back({0, 0, static_cast<float>(cal.lcs.median_conductance_us)});
  for (const auto& level : cal.hcs_levels) {
    board_levels_.push_back({static_cast<std::uint32_t>(std::lround(level.icc_ua * 1000.0)),
                             to_mv(level.gate_voltage_v),
                             static_cast<float>(level.median_conductance_us)});
  }
  limits_.read_voltage_min_mv = 50;
  limits_.read_voltage_max_mv = 500;
  limits_.bit_line_max_mv = 4500;
  limits_.source_line_max_mv = 3000;
  limits_.word_line_max_mv = 3300;
  limits_.pulse_width_min_ns = 10;
  limits_.pulse_width_max_ns = 1'000'000;
  limits_.max_attempts = 100;
  limits_.watchdog_min_ms = 50;
  limits_.watchdog_max_ms = 600'000;

  for (int cell : options_.faults.stuck_cells) chip_.make_stuck(cell);
  boot();
}

p::Configuration BoardFirmware::default_configuration(const devices::Calibration& cal) {
  p::Configuration c;
  c.read_voltage_mv = to_mv(cal.read_voltage_v);
  c.tia_range = 0;
  c.set_bit_line_mv = 1200;
  c.set_width_ns = 100;
  c.reset_source_line_mv = 1500;
  c.reset_word_line_mv = 3000;
  c.reset_width_ns = 100;
  // Forming: well above the median forming voltage, current limited by the lowest level's gate.
  c.form_bit_line_mv = to_mv(cal.forming.median_voltage_v + 4.0 * cal.forming.sigma_v);
  c.form_word_line_mv = to_mv(cal.hcs_levels.front().gate_voltage_v);
  c.form_width_ns = 1000;
  return c;
}

void BoardFirmware::boot() {
  chip_.count_boot();
  chip_.advance_time_ns(kBootTimeNs);
  boot_time_ns_ = chip_.time_ns();
  boot_id_ = mix_boot_id(chip_.seed(), chip_.boot_count());
  config_ = default_configuration(chip_.model().calibration());
  levels_ = board_levels_;
  config_.form_bit_line_mv = std::min(config_.form_bit_line_mv, limits_.bit_line_max_mv);
  configured_ = false;
  cache_.reset();
  batches_.clear();
  watchdog_timeout_ms_ = 0;
  watchdog_tripped_ = false;
  decoder_.reset();
  dirty_ = true;
}

void BoardFirmware::power_cycle() {
  ++stats_.reboots;
  boot();
  save_state();
}

void BoardFirmware::save_state() {
  if (!options_.state_file) return;
  chip_.save(*options_.state_file);
  dirty_ = false;
  last_save_ = options_.clock();
}

bool BoardFirmware::save_state_if_dirty() {
  if (!dirty_ || !options_.state_file) return false;
  save_state();
  return true;
}

void BoardFirmware::poll() {
  if (watchdog_timeout_ms_ == 0 || watchdog_tripped_) return;
  const auto now = options_.clock();
  if (now - watchdog_last_kick_ >= std::chrono::milliseconds(watchdog_timeout_ms_)) {
    // Lines are grounded between operations already; the trip blocks further mutation.
    watchdog_tripped_ = true;
    watchdog_timeout_ms_ = 0;
    ++stats_.watchdog_trips;
  }
}

p::IdentifyResponse BoardFirmware::identity() const {
  const auto& id = chip_.model().calibration().identity;
  p::IdentifyResponse r;
  r.model = id.board_model.substr(0, p::kMaxStringBytes);
  r.serial =
      (options_.serial.empty() ? id.board_serial : options_.serial).substr(0, p::kMaxStringBytes);
  r.firmware_version = options_.firmware_version.substr(0, p::kMaxStringBytes);
  r.rows = Chip::kRows;
  r.cols = Chip::kColumns;
  r.adc_bits = kAdcBits;
  r.dac_bits = 12;
  r.tia_ranges = tia_ranges_;
  r.levels = levels_;
  r.limits = limits_;
  r.boot_id = boot_id_;
  r.capabilities = options_.capabilities;
  r.max_payload_bytes = static_cast<std::uint16_t>(p::kMaxPayloadBytes);
  return r;
}

std::uint16_t BoardFirmware::conductance_to_code(double conductance_us) const {
  const auto& range = tia_ranges_[config_.tia_range];
  const double current_na = conductance_us * config_.read_voltage_mv;
  const double code = range.zero_code + std::round(current_na / range.nanoamps_per_code);
  return static_cast<std::uint16_t>(std::clamp(code, 0.0, static_cast<double>(kAdcMaxCode)));
}

double BoardFirmware::code_to_conductance_us(std::uint16_t code) const {
  const auto& range = tia_ranges_[config_.tia_range];
  return (static_cast<double>(code) - range.zero_code) * range.nanoamps_per_code /
         config_.read_voltage_mv;
}

// --- bytes in, bytes out ----------------------------------------------------------------------

std::vector<std::uint8_t> BoardFirmware::handle_bytes(std::span<const std::uint8_t> bytes) {
  std::vector<std::uint8_t> out;
  if (link_dead_) return out;
  poll();
  for (auto& event : decoder_.feed(bytes)) {
    if (link_dead_) break;
    if (auto* error = std::get_if<p::DecodeError>(&event)) {
      if (error->kind == p::DecodeErrorKind::kGarbage) {
        stats_.garbage_bytes += error->bytes_skipped;
      } else if (error->kind == p::DecodeErrorKind::kFrameCrcMismatch) {
        on_crc_error(error->header, out);
      }
      continue;  // oversize: the header was valid but nothing trustworthy follows; silence
    }
    const auto& frame = std::get<p::Frame>(event);
    const auto& faults = options_.faults;
    if (faults.drop_rate > 0 && fault_rng_.bernoulli(faults.drop_rate)) {
      ++stats_.dropped_requests;
      continue;
    }
    if (faults.corrupt_rate > 0 && fault_rng_.bernoulli(faults.corrupt_rate)) {
      // Flip one bit of the frame as it travels and decode what arrives instead.
      ++stats_.corrupted_requests;
      auto raw = p::encode_frame(frame.header, frame.payload);
      const auto bit = fault_rng_.next() % (raw.size() * 8);
      raw[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      p::StreamDecoder scratch;
      for (auto& corrupted : scratch.feed(raw)) {
        if (auto* e = std::get_if<p::DecodeError>(&corrupted)) {
          if (e->kind == p::DecodeErrorKind::kFrameCrcMismatch) on_crc_error(e->header, out);
          if (e->kind == p::DecodeErrorKind::kGarbage) stats_.garbage_bytes += e->bytes_skipped;
        } else {
          on_frame(std::get<p::Frame>(corrupted), out);
        }
      }
      continue;
    }
    on_frame(frame, out);
  }
  return out;
}

void BoardFirmware::send(std::vector<std::uint8_t> frame_bytes, std::vector<std::uint8_t>& out) {
  const auto& faults = options_.faults;
  if (faults.drop_rate > 0 && fault_rng_.bernoulli(faults.drop_rate)) {
    ++stats_.dropped_replies;
    return;
  }
  if (faults.corrupt_rate > 0 && fault_rng_.bernoulli(faults.corrupt_rate)) {
    ++stats_.corrupted_replies;
    const auto bit = fault_rng_.next() % (frame_bytes.size() * 8);
    frame_bytes[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
  }
  if (faults.delay_rate > 0 && faults.delay_ms > 0 && fault_rng_.bernoulli(faults.delay_rate)) {
    ++stats_.delayed_replies;
    std::this_thread::sleep_for(std::chrono::milliseconds(faults.delay_ms));
  }
  out.insert(out.end(), frame_bytes.begin(), frame_bytes.end());
}

void BoardFirmware::on_crc_error(const p::FrameHeader& header, std::vector<std::uint8_t>& out) {
  // The header was valid: answer bad_crc to that sequence number (never cached; not executed).
  ++stats_.crc_errors;
  const auto payload = p::encode_error_response({p::Status::kBadCrc, boot_id_, 0});
  auto reply =
      p::encode_response_frame(header.sequence, static_cast<p::Opcode>(header.opcode), payload);
  reply_time_ns_ +=
      options_.timing.link_ns(header.payload_length + p::kFrameOverheadBytes + reply.size());
  send(std::move(reply), out);
}

void BoardFirmware::on_frame(const p::Frame& frame, std::vector<std::uint8_t>& out) {
  const auto& h = frame.header;
  if (h.flags & p::frame_flags::kResponse) return;  // a board never answers a response frame
  ++stats_.request_frames;
  const auto& faults = options_.faults;
  if (faults.dead_after_frames != 0 && stats_.request_frames == faults.dead_after_frames + 1) {
    link_dead_ = true;
    return;
  }
  // Every request with valid CRCs restarts the watchdog (retries included).
  watchdog_last_kick_ = options_.clock();
  advance_with_wall_clock();

  const auto raw = p::encode_frame(h, frame.payload);
  const std::uint32_t frame_crc = static_cast<std::uint32_t>(raw[raw.size() - 4]) |
                                  static_cast<std::uint32_t>(raw[raw.size() - 3]) << 8 |
                                  static_cast<std::uint32_t>(raw[raw.size() - 2]) << 16 |
                                  static_cast<std::uint32_t>(raw[raw.size() - 1]) << 24;
  const auto opcode = static_cast<p::Opcode>(h.opcode);

  // Replies that execute nothing take their link time only (reply_time_ns()).
  const auto answer = [&](std::vector<std::uint8_t> reply_frame) {
    reply_time_ns_ += options_.timing.link_ns(raw.size() + reply_frame.size());
    send(std::move(reply_frame), out);
  };
  if (opcode != p::Opcode::kIdentify && cache_ && cache_->sequence == h.sequence) {
    if (cache_->opcode == h.opcode && cache_->length == frame.payload.size() &&
        cache_->frame_crc == frame_crc) {
      ++stats_.cached_replies;
      answer(cache_->reply);
      return;
    }
    answer(p::encode_response_frame(
        h.sequence, opcode, p::encode_error_response({p::Status::kSequenceReused, boot_id_, 0})));
    return;
  }
  if (h.version != p::kProtocolVersion) {
    answer(p::encode_response_frame(
        h.sequence, opcode,
        p::encode_error_response({p::Status::kUnsupportedVersion, boot_id_, 1})));
    return;
  }

  crash_armed_ = std::find(faults.reboot_at_frames.begin(), faults.reboot_at_frames.end(),
                           stats_.request_frames) != faults.reboot_at_frames.end();
  frame_bytes_in_ = raw.size();
  const std::int64_t time_before = chip_.time_ns();
  Reply reply;
  try {
    reply = dispatch(frame);
  } catch (const RebootNow&) {
    crash_armed_ = false;
    power_cycle();
    return;  // the reply is lost with the reset
  } catch (const std::exception& e) {
    reply = error(p::Status::kInternalError, 0);
  }
  if (crash_armed_) {  // a request without cells to interrupt: the reset comes before the reply
    crash_armed_ = false;
    power_cycle();
    return;
  }
  auto reply_frame =
      p::encode_response_frame(h.sequence, opcode, reply.payload, reply.more_fragments);
  const std::int64_t link_ns = options_.timing.link_ns(frame_bytes_in_ + reply_frame.size());
  if (touches_array(opcode) && chip_.time_ns() != time_before) {
    chip_.advance_time_ns(options_.timing.command_overhead_ns + link_ns);
    reply_time_ns_ += chip_.time_ns() - time_before;
  } else {
    reply_time_ns_ += link_ns;
  }
  if (opcode == p::Opcode::kIdentify) {
    cache_.reset();
  } else if (reply.cacheable) {
    cache_ = CachedReply{h.sequence, h.opcode, static_cast<std::uint16_t>(frame.payload.size()),
                         frame_crc, reply_frame};
  }
  send(std::move(reply_frame), out);
}

std::int64_t BoardFirmware::take_reply_time_ns() { return std::exchange(reply_time_ns_, 0); }

p::ResponseStatus BoardFirmware::ok() const { return {p::Status::kOk, boot_id_, 0}; }

BoardFirmware::Reply BoardFirmware::error(p::Status status, std::uint32_t detail) const {
  Reply r;
  r.payload = p::encode_error_response({status, boot_id_, detail});
  // Refusals of requests that were not looked at (or, for a boot id mismatch, must never run on
  // this boot) are not cached: the same frame gets the same answer anyway.
  r.cacheable = status != p::Status::kBadCrc && status != p::Status::kBusy &&
                status != p::Status::kUnsupportedVersion && status != p::Status::kBootIdMismatch;
  return r;
}

BoardFirmware::Reply BoardFirmware::dispatch(const p::Frame& frame) {
  const auto opcode = static_cast<p::Opcode>(frame.header.opcode);
  const std::span<const std::uint8_t> payload(frame.payload);
  const auto needs = [&](std::uint32_t capability) {
    return (options_.capabilities & capability) != 0;
  };
  switch (opcode) {
    case p::Opcode::kIdentify: {
      if (!p::decode<p::IdentifyRequest>(payload)) return error(p::Status::kBadLength);
      ++stats_.executed;
      return {p::encode_response(ok(), identity()), false, true};
    }
    case p::Opcode::kGetStatus: {
      if (!p::decode<p::GetStatusRequest>(payload)) return error(p::Status::kBadLength);
      ++stats_.executed;
      p::GetStatusResponse s;
      s.state_flags = p::board_state::kSafe;  // lines are grounded between operations
      if (watchdog_timeout_ms_ != 0) s.state_flags |= p::board_state::kWatchdogArmed;
      if (watchdog_tripped_) s.state_flags |= p::board_state::kWatchdogTripped;
      if (configured_) s.state_flags |= p::board_state::kConfigured;
      s.boot_id = boot_id_;
      s.uptime_ms = static_cast<std::uint32_t>((chip_.time_ns() - boot_time_ns_) / 1'000'000);
      s.watchdog_timeout_ms = watchdog_timeout_ms_;
      return {p::encode_response(ok(), s), false, true};
    }
    case p::Opcode::kConfigure:
      return do_configure(payload);
    case p::Opcode::kGetConfiguration: {
      if (!p::decode<p::GetConfigurationRequest>(payload)) return error(p::Status::kBadLength);
      ++stats_.executed;
      return {p::encode_response(ok(), config_), false, true};
    }
    case p::Opcode::kSetLevels:
      if (!needs(p::capability::kLevelTable)) return error(p::Status::kNotSupported);
      return do_set_levels(payload);
    case p::Opcode::kForm:
      return do_form(payload);
    case p::Opcode::kSet:
      return do_set(payload);
    case p::Opcode::kReset:
      return do_reset(payload);
    case p::Opcode::kRead:
      return do_read(payload);
    case p::Opcode::kProgramVerify:
      if (!needs(p::capability::kProgramVerify)) return error(p::Status::kNotSupported);
      return do_program_verify(payload);
    case p::Opcode::kReadCounters:
      if (!needs(p::capability::kCounters)) return error(p::Status::kNotSupported);
      return do_read_counters(payload);
    case p::Opcode::kBatchStatus:
      if (!needs(p::capability::kBatchStatus)) return error(p::Status::kNotSupported);
      return do_batch_status(payload);
    case p::Opcode::kSafeState: {
      if (!p::decode<p::SafeStateRequest>(payload)) return error(p::Status::kBadLength);
      ++stats_.executed;
      return {p::encode_response(ok(), p::EmptyBody{}), false, true};
    }
    case p::Opcode::kWatchdogArm:
      if (!needs(p::capability::kWatchdog)) return error(p::Status::kNotSupported);
      return do_watchdog_arm(payload);
    case p::Opcode::kWatchdogKick: {
      if (!needs(p::capability::kWatchdog)) return error(p::Status::kNotSupported);
      if (!p::decode<p::WatchdogKickRequest>(payload)) return error(p::Status::kBadLength);
      ++stats_.executed;
      return {p::encode_response(ok(), p::EmptyBody{}), false, true};
    }
  }
  return error(p::Status::kUnknownOpcode);
}

// --- checks -----------------------------------------------------------------------------------

std::optional<BoardFirmware::Reply> BoardFirmware::check_selection(
    const p::Selection& selection) const {
  if (selection.kind == p::SelectionKind::kBlock) {
    if (selection.row0 + selection.rows > Chip::kRows ||
        selection.col0 + selection.cols > Chip::kColumns) {
      return error(p::Status::kBadCellAddress, 0);
    }
    return std::nullopt;
  }
  for (std::size_t i = 0; i < selection.cells.size(); ++i) {
    if (selection.cells[i] >= Chip::kCells) {
      return error(p::Status::kBadCellAddress, static_cast<std::uint32_t>(i));
    }
  }
  return std::nullopt;
}

std::optional<BoardFirmware::Reply> BoardFirmware::check_boot_id(
    std::uint32_t expected_boot_id) const {
  // A mutating request written for another boot (a resend that outlived a reset: the reply
  // cache that would have answered it is gone with the reset) must not run here.
  if (expected_boot_id != boot_id_) return error(p::Status::kBootIdMismatch, expected_boot_id);
  return std::nullopt;
}

std::optional<BoardFirmware::Reply> BoardFirmware::check_batch(const p::BatchHeader& batch,
                                                               std::size_t chunk) const {
  if (batch.batch_id == 0 ||
      static_cast<std::uint64_t>(batch.batch_offset) + chunk > batch.batch_total) {
    return error(p::Status::kBadArgument, 0);
  }
  std::uint32_t done = 0;
  for (const auto& record : batches_) {
    if (record.id != batch.batch_id) continue;
    // batch_total is fixed by the first chunk: a batch neither grows nor shrinks, so a finished
    // batch cannot be extended (docs/protocol.md section 3).
    if (record.total != batch.batch_total) return error(p::Status::kBadArgument, 0);
    done = record.done;
  }
  if (batch.batch_offset != done) return error(p::Status::kBatchOutOfOrder, done);
  return std::nullopt;
}

std::optional<BoardFirmware::Reply> BoardFirmware::check_formed(
    const p::Selection& selection) const {
  const std::size_t n = selection.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (chip_.cell(selection.cell_at(i, Chip::kColumns)).state == CellState::pristine) {
      return error(p::Status::kNotFormed, static_cast<std::uint32_t>(i));
    }
  }
  return std::nullopt;
}

void BoardFirmware::complete_chunk(const p::BatchHeader& batch, std::size_t chunk) {
  auto it = std::find_if(batches_.begin(), batches_.end(),
                         [&](const BatchRecord& r) { return r.id == batch.batch_id; });
  BatchRecord record{batch.batch_id, 0, batch.batch_total};
  if (it != batches_.end()) {
    record = *it;
    batches_.erase(it);
  }
  record.total = batch.batch_total;
  record.done += static_cast<std::uint32_t>(chunk);
  batches_.push_back(record);
  if (batches_.size() > kBatchMemory) batches_.erase(batches_.begin());
  dirty_ = true;
  // A completed batch goes to "flash", unless a save happened moments ago (a host loop of
  // one-cell batches would otherwise spend its time writing the state file).
  if (record.done == record.total &&
      (!last_save_ || options_.clock() - *last_save_ >= options_.min_save_interval)) {
    save_state();
  }
}

void BoardFirmware::crash_point(std::size_t cells_done, std::size_t cells_total) {
  if (crash_armed_ && cells_done >= cells_total / 2) throw RebootNow{};
}

// --- array primitives -------------------------------------------------------------------------

std::uint16_t BoardFirmware::read_cell(int cell) {
  chip_.advance_time_ns(options_.timing.read_ns());
  const double g = chip_.read(cell, config_.read_voltage_mv * 1e-3);
  dirty_ = true;
  return conductance_to_code(g);
}

void BoardFirmware::advance_with_wall_clock() {
  if (options_.clock_scale <= 0.0) return;
  const auto now = options_.clock();
  const double wall_ns = std::chrono::duration<double, std::nano>(now - clock_synced_).count();
  clock_synced_ = now;
  if (wall_ns > 0.0) {
    chip_.advance_time_ns(static_cast<std::int64_t>(wall_ns * options_.clock_scale));
  }
}

void BoardFirmware::pulse_time(double width_ns) {
  chip_.advance_time_ns(options_.timing.pulse_ns(static_cast<std::int64_t>(width_ns)));
  dirty_ = true;
}

std::uint16_t BoardFirmware::level_gate_mv(std::uint8_t level) const {
  return levels_.at(level).gate_mv;
}

// --- operations -------------------------------------------------------------------------------

BoardFirmware::Reply BoardFirmware::do_configure(std::span<const std::uint8_t> payload) {
  auto decoded = p::decode<p::ConfigureRequest>(payload);
  if (!decoded) return error(decoded.status);
  if (watchdog_tripped_) return error(p::Status::kWatchdogTripped);
  const auto& c = decoded.value->config;
  const auto& l = limits_;
  const auto width_ok = [&](std::uint32_t w) {
    return w >= l.pulse_width_min_ns && w <= l.pulse_width_max_ns;
  };
  const auto refuse = [&](p::ConfigField field) {
    return error(p::Status::kOutOfLimits, static_cast<std::uint32_t>(field));
  };
  if (c.read_voltage_mv < l.read_voltage_min_mv || c.read_voltage_mv > l.read_voltage_max_mv)
    return refuse(p::ConfigField::kReadVoltage);
  if (c.tia_range >= tia_ranges_.size())
    return error(p::Status::kBadArgument, static_cast<std::uint32_t>(p::ConfigField::kTiaRange));
  if (c.set_bit_line_mv > l.bit_line_max_mv) return refuse(p::ConfigField::kSetBitLineVoltage);
  if (!width_ok(c.set_width_ns)) return refuse(p::ConfigField::kSetPulseWidth);
  if (c.reset_source_line_mv > l.source_line_max_mv)
    return refuse(p::ConfigField::kResetSourceLineVoltage);
  if (c.reset_word_line_mv > l.word_line_max_mv)
    return refuse(p::ConfigField::kResetWordLineVoltage);
  if (!width_ok(c.reset_width_ns)) return refuse(p::ConfigField::kResetPulseWidth);
  if (c.form_bit_line_mv > l.bit_line_max_mv) return refuse(p::ConfigField::kFormBitLineVoltage);
  if (c.form_word_line_mv > l.word_line_max_mv) return refuse(p::ConfigField::kFormWordLineVoltage);
  if (!width_ok(c.form_width_ns)) return refuse(p::ConfigField::kFormPulseWidth);
  ++stats_.executed;
  config_ = c;
  configured_ = true;
  return {p::encode_response(ok(), p::EmptyBody{}), false, true};
}

BoardFirmware::Reply BoardFirmware::do_set_levels(std::span<const std::uint8_t> payload) {
  auto decoded = p::decode<p::SetLevelsRequest>(payload);
  if (!decoded) return error(decoded.status);
  if (watchdog_tripped_) return error(p::Status::kWatchdogTripped);
  const auto refuse = [&](p::Status status, p::ConfigField field) {
    return error(status, static_cast<std::uint32_t>(field));
  };
  std::vector<p::LevelEntry> table{levels_.front()};  // the LCS entry stays
  for (const auto& l : decoded.value->levels) {
    const auto& below = table.back();
    const double icc_ua = chip_.model().compliance_current_ua(l.gate_mv * 1e-3);
    if (l.gate_mv == 0 || l.gate_mv > limits_.word_line_max_mv || icc_ua * 1000.0 < 1.0) {
      return refuse(p::Status::kOutOfLimits, p::ConfigField::kLevelGate);
    }
    if (table.size() > 1 && l.gate_mv <= below.gate_mv) {
      return refuse(p::Status::kBadArgument, p::ConfigField::kLevelGate);
    }
    if (!std::isfinite(l.target_conductance_us) || l.target_conductance_us > 1e6f ||
        l.target_conductance_us <= below.target_conductance_us) {
      return refuse(p::Status::kBadArgument, p::ConfigField::kLevelTarget);
    }
    table.push_back({static_cast<std::uint32_t>(std::lround(icc_ua * 1000.0)), l.gate_mv,
                     l.target_conductance_us});
  }
  ++stats_.executed;
  levels_ = decoded.value->levels.empty() ? board_levels_ : std::move(table);
  return {p::encode_response(ok(), p::LevelTable{levels_}), false, true};
}

BoardFirmware::Reply BoardFirmware::do_form(std::span<const std::uint8_t> payload) {
  auto decoded = p::decode<p::FormRequest>(payload);
  if (!decoded) return error(decoded.status);
  const auto& req = *decoded.value;
  if (auto refused = check_pulse_request(req.expected_boot_id, req.selection)) return *refused;
  return pulse_cells(req.batch, req.selection, false, [&](int cell) {
    // Already formed: no pulse.
    if (chip_.cell(cell).state != CellState::pristine) return std::optional<double>{};
    chip_.form(cell, config_.form_bit_line_mv * 1e-3, config_.form_word_line_mv * 1e-3,
               config_.form_width_ns);
    return std::optional<double>{config_.form_width_ns};
  });
}

BoardFirmware::Reply BoardFirmware::do_set(std::span<const std::uint8_t> payload) {
  auto decoded = p::decode<p::SetRequest>(payload);
  if (!decoded) return error(decoded.status);
  const auto& req = *decoded.value;
  if (req.mode == p::SetMode::kExplicit && !(options_.capabilities & p::capability::kExplicitSet))
    return error(p::Status::kNotSupported);
  if (auto refused = check_pulse_request(req.expected_boot_id, req.selection)) return *refused;
  double gate_v, bit_line_v, width_ns;
  if (req.mode == p::SetMode::kLevel) {
    if (req.level < 1 || req.level >= levels_.size())
      return error(p::Status::kBadArgument, static_cast<std::uint32_t>(p::ConfigField::kLevel));
    gate_v = level_gate_mv(req.level) * 1e-3;
    bit_line_v = config_.set_bit_line_mv * 1e-3;
    width_ns = config_.set_width_ns;
  } else {
    const auto refuse = [&](p::ConfigField field) {
      return error(p::Status::kOutOfLimits, static_cast<std::uint32_t>(field));
    };
    if (req.word_line_mv > limits_.word_line_max_mv)
      return refuse(p::ConfigField::kSetWordLineVoltage);
    if (req.bit_line_mv > limits_.bit_line_max_mv)
      return refuse(p::ConfigField::kSetBitLineVoltage);
    if (req.width_ns < limits_.pulse_width_min_ns || req.width_ns > limits_.pulse_width_max_ns)
      return refuse(p::ConfigField::kSetPulseWidth);
    gate_v = req.word_line_mv * 1e-3;
    bit_line_v = req.bit_line_mv * 1e-3;
    width_ns = req.width_ns;
  }
  return pulse_cells(req.batch, req.selection, true, [&](int cell) {
    chip_.set(cell, bit_line_v, gate_v, width_ns);
    return std::optional<double>{width_ns};
  });
}

BoardFirmware::Reply BoardFirmware::do_reset(std::span<const std::uint8_t> payload) {
  auto decoded = p::decode<p::ResetRequest>(payload);
  if (!decoded) return error(decoded.status);
  const auto& req = *decoded.value;
  if (auto refused = check_pulse_request(req.expected_boot_id, req.selection)) return *refused;
  return pulse_cells(req.batch, req.selection, true, [&](int cell) {
    chip_.reset(cell, config_.reset_source_line_mv * 1e-3, config_.reset_width_ns);
    return std::optional<double>{config_.reset_width_ns};
  });
}

std::optional<BoardFirmware::Reply> BoardFirmware::check_pulse_request(
    std::uint32_t expected_boot_id, const p::Selection& selection) const {
  if (auto refused = check_boot_id(expected_boot_id)) return refused;
  if (watchdog_tripped_) return error(p::Status::kWatchdogTripped);
  return check_selection(selection);
}

BoardFirmware::Reply BoardFirmware::pulse_cells(
    const p::BatchHeader& batch, const p::Selection& selection, bool formed_cells_only,
    const std::function<std::optional<double>(int cell)>& pulse) {
  const std::size_t n = selection.size();
  if (auto refused = check_batch(batch, n)) return *refused;
  if (formed_cells_only) {
    if (auto refused = check_formed(selection)) return *refused;
  }
  ++stats_.executed;
  for (std::size_t i = 0; i < n; ++i) {
    crash_point(i, n);
    if (const auto width_ns = pulse(selection.cell_at(i, Chip::kColumns))) pulse_time(*width_ns);
  }
  complete_chunk(batch, n);
  return {p::encode_response(ok(), p::PulseResponse{batch.batch_id, static_cast<std::uint16_t>(n)}),
          false, true};
}

template <class PagedRequest>
std::optional<BoardFirmware::Reply> BoardFirmware::take_page(const PagedRequest& req,
                                                             std::size_t per_response,
                                                             std::size_t& count) {
  if (auto refused = check_selection(req.selection)) return refused;
  const std::size_t size = req.selection.size();
  if (req.offset >= size) return error(p::Status::kBadArgument, 0);
  ++stats_.executed;
  count = std::min<std::size_t>({req.max_count, size - req.offset, per_response});
  return std::nullopt;
}

BoardFirmware::Reply BoardFirmware::do_read(std::span<const std::uint8_t> payload) {
  auto decoded = p::decode<p::ReadRequest>(payload);
  if (!decoded) return error(decoded.status);
  const auto& req = *decoded.value;
  std::size_t count = 0;
  if (auto refused = take_page(req, p::read_codes_per_response(p::kMaxPayloadBytes), count)) {
    return *refused;
  }
  p::ReadResponse r;
  r.tia_range = config_.tia_range;
  r.offset = req.offset;
  r.codes.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    r.codes.push_back(read_cell(req.selection.cell_at(req.offset + i, Chip::kColumns)));
  }
  return {p::encode_response(ok(), r), req.offset + count < req.selection.size(), true};
}

BoardFirmware::Reply BoardFirmware::do_program_verify(std::span<const std::uint8_t> payload) {
  auto decoded = p::decode<p::ProgramVerifyRequest>(payload);
  if (!decoded) return error(decoded.status);
  const auto& req = *decoded.value;
  if (auto refused = check_boot_id(req.expected_boot_id)) return *refused;
  if (watchdog_tripped_) return error(p::Status::kWatchdogTripped);
  const auto& entries = req.entries;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].cell >= Chip::kCells)
      return error(p::Status::kBadCellAddress, static_cast<std::uint32_t>(i));
  }
  for (const auto& e : entries) {
    if (e.level >= levels_.size())
      return error(p::Status::kBadArgument, static_cast<std::uint32_t>(p::ConfigField::kLevel));
    if (e.max_attempts == 0)
      return error(p::Status::kBadArgument,
                   static_cast<std::uint32_t>(p::ConfigField::kMaxAttempts));
    if (e.max_attempts > limits_.max_attempts)
      return error(p::Status::kOutOfLimits,
                   static_cast<std::uint32_t>(p::ConfigField::kMaxAttempts));
    if (e.tolerance_us_x100 < p::kMinToleranceUsX100 ||
        e.tolerance_us_x100 > p::kMaxToleranceUsX100)
      return error(p::Status::kBadArgument, static_cast<std::uint32_t>(p::ConfigField::kTolerance));
  }
  if (auto refused = check_batch(req.batch, entries.size())) return *refused;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (chip_.cell(entries[i].cell).state == CellState::pristine)
      return error(p::Status::kNotFormed, static_cast<std::uint32_t>(i));
  }
  ++stats_.executed;

  const bool want_trace = (req.options & p::program_verify_options::kTrace) &&
                          (options_.capabilities & p::capability::kTrace);
  // Payload budget for the trace: prefix 5, body 7 + 3 per result + 3 for the trace header.
  const std::size_t fixed = 5 + 7 + 3 * entries.size() + 3;
  const std::size_t trace_room =
      fixed < p::kMaxPayloadBytes ? (p::kMaxPayloadBytes - fixed) / 5 : 0;

  p::ProgramVerifyResponse r;
  r.batch_id = req.batch.batch_id;
  r.tia_range = config_.tia_range;
  r.has_trace = want_trace;
  r.results.reserve(entries.size());
  const double set_bl_v = config_.set_bit_line_mv * 1e-3;
  const double reset_sl_v = config_.reset_source_line_mv * 1e-3;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    crash_point(i, entries.size());
    const auto& e = entries[i];
    const auto band = p::verify_band(e.level, levels_[e.level].target_conductance_us,
                                     e.tolerance_us_x100 / 100.0);
    std::uint16_t code = 0;
    bool pulsed = false;
    p::PulseKind last_pulse = p::PulseKind::kSet;
    const auto read = [&] {
      code = read_cell(e.cell);
      if (pulsed && want_trace) {
        if (r.trace.size() < trace_room) {
          r.trace.push_back({static_cast<std::uint16_t>(i), last_pulse, code});
        } else {
          r.trace_truncated = true;
        }
      }
      return code_to_conductance_us(code);
    };
    const auto pulse = [&](p::PulseKind kind) {
      if (kind == p::PulseKind::kReset) {
        chip_.reset(e.cell, reset_sl_v, config_.reset_width_ns);
        pulse_time(config_.reset_width_ns);
      } else {
        chip_.set(e.cell, set_bl_v, level_gate_mv(e.level) * 1e-3, config_.set_width_ns);
        pulse_time(config_.set_width_ns);
      }
      pulsed = true;
      last_pulse = kind;
    };
    const auto outcome = p::verify_cell(band, e.max_attempts, read, pulse);
    r.results.push_back({code, static_cast<std::uint8_t>(outcome.attempts), outcome.passed});
  }
  complete_chunk(req.batch, entries.size());
  return {p::encode_response(ok(), r), false, true};
}

BoardFirmware::Reply BoardFirmware::do_read_counters(std::span<const std::uint8_t> payload) {
  auto decoded = p::decode<p::ReadCountersRequest>(payload);
  if (!decoded) return error(decoded.status);
  const auto& req = *decoded.value;
  std::size_t count = 0;
  if (auto refused = take_page(req, p::counters_per_response(p::kMaxPayloadBytes), count)) {
    return *refused;
  }
  p::ReadCountersResponse r;
  r.offset = req.offset;
  for (std::size_t i = 0; i < count; ++i) {
    const Cell& c = chip_.cell(req.selection.cell_at(req.offset + i, Chip::kColumns));
    const auto sat32 = [](std::uint64_t v) {
      return static_cast<std::uint32_t>(std::min<std::uint64_t>(v, 0xFFFFFFFFu));
    };
    r.counters.push_back(
        {sat32(c.set_pulses), sat32(c.reset_pulses),
         static_cast<std::uint16_t>(std::min<std::uint64_t>(c.form_pulses, 0xFFFF))});
  }
  return {p::encode_response(ok(), r), req.offset + count < req.selection.size(), true};
}

BoardFirmware::Reply BoardFirmware::do_batch_status(std::span<const std::uint8_t> payload) {
  auto decoded = p::decode<p::BatchStatusRequest>(payload);
  if (!decoded) return error(decoded.status);
  ++stats_.executed;
  p::BatchStatusResponse r;
  r.batch_id = decoded.value->batch_id;
  for (const auto& record : batches_) {
    if (record.id != r.batch_id) continue;
    r.cells_done = record.done;
    r.cells_total = record.total;
    r.state = record.done == record.total ? p::BatchState::kDone : p::BatchState::kInProgress;
  }
  return {p::encode_response(ok(), r), false, true};
}

BoardFirmware::Reply BoardFirmware::do_watchdog_arm(std::span<const std::uint8_t> payload) {
  auto decoded = p::decode<p::WatchdogArmRequest>(payload);
  if (!decoded) return error(decoded.status);
  const std::uint32_t timeout = decoded.value->timeout_ms;
  if (timeout != 0 && (timeout < limits_.watchdog_min_ms || timeout > limits_.watchdog_max_ms)) {
    return error(p::Status::kOutOfLimits,
                 static_cast<std::uint32_t>(p::ConfigField::kWatchdogTimeout));
  }
  ++stats_.executed;
  watchdog_tripped_ = false;  // any ARM acknowledges a trip
  watchdog_timeout_ms_ = timeout;
  watchdog_last_kick_ = options_.clock();
  return {p::encode_response(ok(), p::EmptyBody{}), false, true};
}

}  // namespace metaplast::sim
