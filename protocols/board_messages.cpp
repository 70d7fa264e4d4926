#include "protocols/board_messages.hpp"

#include <bit>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "common/enum_names.hpp"

namespace metaplast::protocols {
namespace {

// ---- Little-endian writer ----
class Writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) {
    out_.push_back(static_cast<std::uint8_t>(v & 0xFF));
    out_.push_back(static_cast<std::uint8_t>(v >> 8));
  }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void f32(float v) { u32(std::bit_cast<std::uint32_t>(v)); }
  void str(const std::string& s, const char* what) {
    if (s.size() > kMaxStringBytes) {
      throw std::invalid_argument(std::string("encode: ") + what + " is " +
                                  std::to_string(s.size()) + " bytes, the protocol allows " +
                                  std::to_string(kMaxStringBytes));
    }
    u8(static_cast<std::uint8_t>(s.size()));
    out_.insert(out_.end(), s.begin(), s.end());
  }
  std::vector<std::uint8_t> take() { return std::move(out_); }

 private:
  std::vector<std::uint8_t> out_;
};

[[noreturn]] void encode_error(const std::string& what) {
  throw std::invalid_argument("encode: " + what + " (see docs/protocol.md)");
}

template <class T>
std::uint16_t checked_count(const std::vector<T>& v, std::size_t max, const char* what,
                            std::size_t min = 1) {
  if (v.size() < min || v.size() > max) {
    encode_error(std::string(what) + " has " + std::to_string(v.size()) + " entries, allowed " +
                 std::to_string(min) + ".." + std::to_string(max));
  }
  return static_cast<std::uint16_t>(v.size());
}

// ---- Little-endian reader that records the first failure ----
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
  bool ok() const { return status_ == Status::kOk; }
  std::size_t remaining() const { return bytes_.size() - pos_; }

  std::uint8_t u8() {
    if (!need(1)) return 0;
    return bytes_[pos_++];
  }
  std::uint16_t u16() {
    if (!need(2)) return 0;
    const auto v = static_cast<std::uint16_t>(bytes_[pos_] | (bytes_[pos_ + 1] << 8));
    pos_ += 2;
    return v;
  }
  std::uint32_t u32() {
    if (!need(4)) return 0;
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(bytes_[pos_ + i]) << (8 * i);
    pos_ += 4;
    return v;
  }
  float f32() { return std::bit_cast<float>(u32()); }
  std::string str(const char* what) {
    const std::uint8_t n = u8();
    if (!ok()) return {};
    if (n > kMaxStringBytes) {
      fail(Status::kBadArgument, std::string(what) + " length " + std::to_string(n) + " exceeds " +
                                     std::to_string(kMaxStringBytes));
      return {};
    }
    if (!need(n)) return {};
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  // Count field: must lie in [min, max] and the entries must fit in what is left.
  std::uint16_t count(std::size_t min, std::size_t max, std::size_t entry_bytes, const char* what) {
    const std::uint16_t n = u16();
    if (!ok()) return 0;
    if (n < min || n > max) {
      fail(Status::kBadArgument, std::string(what) + " count " + std::to_string(n) + " outside " +
                                     std::to_string(min) + ".." + std::to_string(max));
      return 0;
    }
    if (remaining() < n * entry_bytes) {
      fail(Status::kBadLength, std::string(what) + ": " + std::to_string(n) + " entries need " +
                                   std::to_string(n * entry_bytes) + " bytes, " +
                                   std::to_string(remaining()) + " left");
      return 0;
    }
    return n;
  }
  void fail(Status s, std::string why) {
    if (ok()) {
      status_ = s;
      error_ = std::move(why);
    }
  }
  // Call at the end: trailing bytes are a length error.
  template <class T>
  Decoded<T> finish(T&& value) {
    if (ok() && remaining() != 0) {
      fail(Status::kBadLength, std::to_string(remaining()) + " unexpected trailing bytes");
    }
    Decoded<T> d;
    if (ok()) {
      d.value = std::forward<T>(value);
    } else {
      d.status = status_;
      d.error = error_;
    }
    return d;
  }

 private:
  bool need(std::size_t n) {
    if (!ok()) return false;
    if (remaining() < n) {
      fail(Status::kBadLength, "payload truncated at byte " + std::to_string(pos_) + " (needs " +
                                   std::to_string(n) + " more, has " + std::to_string(remaining()) +
                                   ")");
      return false;
    }
    return true;
  }

  std::span<const std::uint8_t> bytes_;
  std::size_t pos_ = 0;
  Status status_ = Status::kOk;
  std::string error_;
};

// ---- Pieces ----
void put(Writer& w, const Selection& s) {
  w.u8(static_cast<std::uint8_t>(s.kind));
  if (s.kind == SelectionKind::kCellList) {
    w.u16(checked_count(s.cells, kMaxListCells, "cell list selection"));
    for (auto c : s.cells) w.u16(c);
  } else if (s.kind == SelectionKind::kBlock) {
    if (s.rows == 0 || s.cols == 0) encode_error("block selection with zero rows or columns");
    w.u16(s.row0);
    w.u16(s.col0);
    w.u16(s.rows);
    w.u16(s.cols);
  } else {
    encode_error("unknown selection kind " + std::to_string(static_cast<int>(s.kind)));
  }
}

Selection get_selection(Reader& r) {
  Selection s;
  const std::uint8_t kind = r.u8();
  if (!r.ok()) return s;
  if (kind == static_cast<std::uint8_t>(SelectionKind::kCellList)) {
    s.kind = SelectionKind::kCellList;
    const std::uint16_t n = r.count(1, kMaxListCells, 2, "cell list selection");
    s.cells.resize(n);
    for (auto& c : s.cells) c = r.u16();
  } else if (kind == static_cast<std::uint8_t>(SelectionKind::kBlock)) {
    s.kind = SelectionKind::kBlock;
    s.row0 = r.u16();
    s.col0 = r.u16();
    s.rows = r.u16();
    s.cols = r.u16();
    if (r.ok() && (s.rows == 0 || s.cols == 0)) {
      r.fail(Status::kBadArgument, "block selection with zero rows or columns");
    }
  } else {
    r.fail(Status::kBadArgument, "unknown selection kind " + std::to_string(kind));
  }
  return s;
}

void put(Writer& w, const BatchHeader& b) {
  w.u32(b.batch_id);
  w.u32(b.batch_offset);
  w.u32(b.batch_total);
}

BatchHeader get_batch(Reader& r) {
  BatchHeader b;
  b.batch_id = r.u32();
  b.batch_offset = r.u32();
  b.batch_total = r.u32();
  return b;
}

void put(Writer& w, const Configuration& c) {
  w.u16(c.read_voltage_mv);
  w.u8(c.tia_range);
  w.u16(c.set_bit_line_mv);
  w.u32(c.set_width_ns);
  w.u16(c.reset_source_line_mv);
  w.u16(c.reset_word_line_mv);
  w.u32(c.reset_width_ns);
  w.u16(c.form_bit_line_mv);
  w.u16(c.form_word_line_mv);
  w.u32(c.form_width_ns);
}

Configuration get_configuration(Reader& r) {
  Configuration c;
  c.read_voltage_mv = r.u16();
  c.tia_range = r.u8();
  c.set_bit_line_mv = r.u16();
  c.set_width_ns = r.u32();
  c.reset_source_line_mv = r.u16();
  c.reset_word_line_mv = r.u16();
  c.reset_width_ns = r.u32();
  c.form_bit_line_mv = r.u16();
  c.form_word_line_mv = r.u16();
  c.form_width_ns = r.u32();
  return c;
}

// The level table as IDENTIFY and SET_LEVELS carry it: u8 n (2..16), n x level entry.
void put_levels(Writer& w, const std::vector<LevelEntry>& levels, const char* what) {
  if (levels.size() < 2 || levels.size() > kMaxLevels) {
    encode_error(std::string(what) + " needs 2.." + std::to_string(kMaxLevels) + " levels");
  }
  w.u8(static_cast<std::uint8_t>(levels.size()));
  for (const auto& l : levels) {
    w.u32(l.icc_na);
    w.u16(l.gate_mv);
    w.f32(l.target_conductance_us);
  }
}

std::vector<LevelEntry> get_levels(Reader& r) {
  std::vector<LevelEntry> levels;
  const std::uint8_t n_levels = r.u8();
  if (r.ok() && (n_levels < 2 || n_levels > kMaxLevels)) {
    r.fail(Status::kBadArgument, "level count " + std::to_string(n_levels) + " outside 2..16");
  }
  if (r.ok()) levels.resize(n_levels);
  for (auto& l : levels) {
    l.icc_na = r.u32();
    l.gate_mv = r.u16();
    l.target_conductance_us = r.f32();
  }
  return levels;
}

void put_selection_window(Writer& w, const Selection& s, std::uint16_t offset,
                          std::uint16_t max_count, std::size_t limit, const char* what) {
  put(w, s);
  if (max_count == 0 || max_count > limit) {
    encode_error(std::string(what) + " max_count " + std::to_string(max_count) + " outside 1.." +
                 std::to_string(limit));
  }
  w.u16(offset);
  w.u16(max_count);
}

void get_selection_window(Reader& r, Selection& s, std::uint16_t& offset, std::uint16_t& max_count,
                          std::size_t limit, const char* what) {
  s = get_selection(r);
  offset = r.u16();
  max_count = r.u16();
  if (r.ok() && (max_count == 0 || max_count > limit)) {
    r.fail(Status::kBadArgument, std::string(what) + " max_count " + std::to_string(max_count) +
                                     " outside 1.." + std::to_string(limit));
  }
}

std::vector<std::uint8_t> with_prefix(const ResponseStatus& rs, Writer&& body) {
  if (rs.status != Status::kOk) {
    encode_error("encode_response needs status ok; use encode_error_response for errors");
  }
  Writer w;
  w.u8(static_cast<std::uint8_t>(Status::kOk));
  w.u32(rs.boot_id);
  auto out = w.take();
  auto b = body.take();
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

// Reads and checks the ok prefix; on failure returns false with `r` failed.
bool get_ok_prefix(Reader& r) {
  const auto status = static_cast<Status>(r.u8());
  r.u32();  // boot id
  if (!r.ok()) return false;
  if (status != Status::kOk) {
    r.fail(status, std::string("response status ") + to_string(status));
    return false;
  }
  return true;
}

}  // namespace

// ---- Selection helpers ----
Selection Selection::cell(std::uint16_t row, std::uint16_t col, std::uint16_t array_cols) {
  return list({static_cast<std::uint16_t>(row * array_cols + col)});
}
Selection Selection::list(std::vector<std::uint16_t> cell_indices) {
  Selection s;
  s.kind = SelectionKind::kCellList;
  s.cells = std::move(cell_indices);
  return s;
}
Selection Selection::block(std::uint16_t row0, std::uint16_t col0, std::uint16_t rows,
                           std::uint16_t cols) {
  Selection s;
  s.kind = SelectionKind::kBlock;
  s.row0 = row0;
  s.col0 = col0;
  s.rows = rows;
  s.cols = cols;
  return s;
}
Selection Selection::row(std::uint16_t row, std::uint16_t array_cols) {
  return block(row, 0, 1, array_cols);
}
Selection Selection::array(std::uint16_t array_rows, std::uint16_t array_cols) {
  return block(0, 0, array_rows, array_cols);
}
std::size_t Selection::size() const {
  return kind == SelectionKind::kCellList ? cells.size() : static_cast<std::size_t>(rows) * cols;
}
std::uint16_t Selection::cell_at(std::size_t i, std::uint16_t array_cols) const {
  if (kind == SelectionKind::kCellList) return cells.at(i);
  const std::size_t r = row0 + i / cols;
  const std::size_t c = col0 + i % cols;
  return static_cast<std::uint16_t>(r * array_cols + c);
}

// ---- Request encoders ----
std::vector<std::uint8_t> encode(const IdentifyRequest&) { return {}; }
std::vector<std::uint8_t> encode(const GetStatusRequest&) { return {}; }
std::vector<std::uint8_t> encode(const GetConfigurationRequest&) { return {}; }
std::vector<std::uint8_t> encode(const SafeStateRequest&) { return {}; }
std::vector<std::uint8_t> encode(const WatchdogKickRequest&) { return {}; }

std::vector<std::uint8_t> encode(const ConfigureRequest& r) {
  Writer w;
  put(w, r.config);
  return w.take();
}

std::vector<std::uint8_t> encode(const SetLevelsRequest& r) {
  if (r.levels.size() >= kMaxLevels) {
    encode_error("SET_LEVELS carries 0.." + std::to_string(kMaxLevels - 1) + " levels");
  }
  Writer w;
  w.u8(static_cast<std::uint8_t>(r.levels.size()));
  for (const auto& l : r.levels) {
    w.u16(l.gate_mv);
    w.f32(l.target_conductance_us);
  }
  return w.take();
}

std::vector<std::uint8_t> encode(const FormRequest& r) {
  Writer w;
  put(w, r.batch);
  put(w, r.selection);
  w.u32(r.expected_boot_id);
  return w.take();
}

std::vector<std::uint8_t> encode(const SetRequest& r) {
  Writer w;
  put(w, r.batch);
  put(w, r.selection);
  w.u8(static_cast<std::uint8_t>(r.mode));
  if (r.mode == SetMode::kLevel) {
    w.u8(r.level);
  } else if (r.mode == SetMode::kExplicit) {
    w.u16(r.word_line_mv);
    w.u16(r.bit_line_mv);
    w.u32(r.width_ns);
  } else {
    encode_error("unknown SET mode " + std::to_string(static_cast<int>(r.mode)));
  }
  w.u32(r.expected_boot_id);
  return w.take();
}

std::vector<std::uint8_t> encode(const ResetRequest& r) {
  Writer w;
  put(w, r.batch);
  put(w, r.selection);
  w.u32(r.expected_boot_id);
  return w.take();
}

std::vector<std::uint8_t> encode(const ReadRequest& r) {
  Writer w;
  put_selection_window(w, r.selection, r.offset, r.max_count, kMaxReadCodesPerResponse, "READ");
  return w.take();
}

std::vector<std::uint8_t> encode(const ProgramVerifyRequest& r) {
  Writer w;
  put(w, r.batch);
  w.u8(r.options);
  w.u16(checked_count(r.entries, kMaxProgramVerifyEntries, "PROGRAM_VERIFY entries"));
  for (const auto& e : r.entries) {
    w.u16(e.cell);
    w.u8(e.level);
    w.u8(e.max_attempts);
    w.u16(e.tolerance_us_x100);
  }
  w.u32(r.expected_boot_id);
  return w.take();
}

std::vector<std::uint8_t> encode(const ReadCountersRequest& r) {
  Writer w;
  put_selection_window(w, r.selection, r.offset, r.max_count, kMaxCountersPerResponse,
                       "READ_COUNTERS");
  return w.take();
}

std::vector<std::uint8_t> encode(const BatchStatusRequest& r) {
  Writer w;
  w.u32(r.batch_id);
  return w.take();
}

std::vector<std::uint8_t> encode(const WatchdogArmRequest& r) {
  Writer w;
  w.u32(r.timeout_ms);
  return w.take();
}

// ---- Request decoders ----
template <>
Decoded<IdentifyRequest> decode<IdentifyRequest>(std::span<const std::uint8_t> p) {
  return Reader(p).finish(IdentifyRequest{});
}
template <>
Decoded<GetStatusRequest> decode<GetStatusRequest>(std::span<const std::uint8_t> p) {
  return Reader(p).finish(GetStatusRequest{});
}
template <>
Decoded<GetConfigurationRequest> decode<GetConfigurationRequest>(std::span<const std::uint8_t> p) {
  return Reader(p).finish(GetConfigurationRequest{});
}
template <>
Decoded<SafeStateRequest> decode<SafeStateRequest>(std::span<const std::uint8_t> p) {
  return Reader(p).finish(SafeStateRequest{});
}
template <>
Decoded<WatchdogKickRequest> decode<WatchdogKickRequest>(std::span<const std::uint8_t> p) {
  return Reader(p).finish(WatchdogKickRequest{});
}

template <>
Decoded<ConfigureRequest> decode<ConfigureRequest>(std::span<const std::uint8_t> p) {
  Reader r(p);
  ConfigureRequest v;
  v.config = get_configuration(r);
  return r.finish(std::move(v));
}

template <>
Decoded<SetLevelsRequest> decode<SetLevelsRequest>(std::span<const std::uint8_t> p) {
  Reader r(p);
  SetLevelsRequest v;
  const std::uint8_t n = r.u8();
  if (r.ok() && n >= kMaxLevels) {
    r.fail(Status::kBadArgument, "SET_LEVELS count " + std::to_string(n) + " outside 0..15");
  }
  if (r.ok()) v.levels.resize(n);
  for (auto& l : v.levels) {
    l.gate_mv = r.u16();
    l.target_conductance_us = r.f32();
  }
  return r.finish(std::move(v));
}

template <>
Decoded<FormRequest> decode<FormRequest>(std::span<const std::uint8_t> p) {
  Reader r(p);
  FormRequest v;
  v.batch = get_batch(r);
  v.selection = get_selection(r);
  v.expected_boot_id = r.u32();
  return r.finish(std::move(v));
}

template <>
Decoded<SetRequest> decode<SetRequest>(std::span<const std::uint8_t> p) {
  Reader r(p);
  SetRequest v;
  v.batch = get_batch(r);
  v.selection = get_selection(r);
  const std::uint8_t mode = r.u8();
  if (r.ok()) {
    if (mode == static_cast<std::uint8_t>(SetMode::kLevel)) {
      v.mode = SetMode::kLevel;
      v.level = r.u8();
    } else if (mode == static_cast<std::uint8_t>(SetMode::kExplicit)) {
      v.mode = SetMode::kExplicit;
      v.level = 0;
      v.word_line_mv = r.u16();
      v.bit_line_mv = r.u16();
      v.width_ns = r.u32();
    } else {
      r.fail(Status::kBadArgument, "unknown SET mode " + std::to_string(mode));
    }
  }
  v.expected_boot_id = r.u32();
  return r.finish(std::move(v));
}

template <>
Decoded<ResetRequest> decode<ResetRequest>(std::span<const std::uint8_t> p) {
  Reader r(p);
  ResetRequest v;
  v.batch = get_batch(r);
  v.selection = get_selection(r);
  v.expected_boot_id = r.u32();
  return r.finish(std::move(v));
}

template <>
Decoded<ReadRequest> decode<ReadRequest>(std::span<const std::uint8_t> p) {
  Reader r(p);
  ReadRequest v;
  get_selection_window(r, v.selection, v.offset, v.max_count, kMaxReadCodesPerResponse, "READ");
  return r.finish(std::move(v));
}

template <>
Decoded<ProgramVerifyRequest> decode<ProgramVerifyRequest>(std::span<const std::uint8_t> p) {
  Reader r(p);
  ProgramVerifyRequest v;
  v.batch = get_batch(r);
  v.options = r.u8();
  const std::uint16_t n = r.count(1, kMaxProgramVerifyEntries, 6, "PROGRAM_VERIFY entries");
  v.entries.resize(n);
  for (auto& e : v.entries) {
    e.cell = r.u16();
    e.level = r.u8();
    e.max_attempts = r.u8();
    e.tolerance_us_x100 = r.u16();
  }
  v.expected_boot_id = r.u32();
  return r.finish(std::move(v));
}

template <>
Decoded<ReadCountersRequest> decode<ReadCountersRequest>(std::span<const std::uint8_t> p) {
  Reader r(p);
  ReadCountersRequest v;
  get_selection_window(r, v.selection, v.offset, v.max_count, kMaxCountersPerResponse,
                       "READ_COUNTERS");
  return r.finish(std::move(v));
}

template <>
Decoded<BatchStatusRequest> decode<BatchStatusRequest>(std::span<const std::uint8_t> p) {
  Reader r(p);
  BatchStatusRequest v;
  v.batch_id = r.u32();
  return r.finish(std::move(v));
}

template <>
Decoded<WatchdogArmRequest> decode<WatchdogArmRequest>(std::span<const std::uint8_t> p) {
  Reader r(p);
  WatchdogArmRequest v;
  v.timeout_ms = r.u32();
  return r.finish(std::move(v));
}

// ---- Response encoders ----
std::vector<std::uint8_t> encode_response(const ResponseStatus& rs, const IdentifyResponse& b) {
  Writer w;
  w.u8(b.protocol_version);
  w.str(b.model, "model");
  w.str(b.serial, "serial");
  w.str(b.firmware_version, "firmware_version");
  w.u16(b.rows);
  w.u16(b.cols);
  w.u8(b.adc_bits);
  w.u8(b.dac_bits);
  if (b.tia_ranges.empty() || b.tia_ranges.size() > kMaxTiaRanges) {
    encode_error("IDENTIFY needs 1.." + std::to_string(kMaxTiaRanges) + " TIA ranges");
  }
  w.u8(static_cast<std::uint8_t>(b.tia_ranges.size()));
  for (const auto& t : b.tia_ranges) {
    w.u32(t.full_scale_na);
    w.f32(t.nanoamps_per_code);
    w.u16(t.zero_code);
  }
  put_levels(w, b.levels, "IDENTIFY");
  const auto& m = b.limits;
  w.u16(m.read_voltage_min_mv);
  w.u16(m.read_voltage_max_mv);
  w.u16(m.bit_line_max_mv);
  w.u16(m.source_line_max_mv);
  w.u16(m.word_line_max_mv);
  w.u32(m.pulse_width_min_ns);
  w.u32(m.pulse_width_max_ns);
  w.u8(m.max_attempts);
  w.u32(m.watchdog_min_ms);
  w.u32(m.watchdog_max_ms);
  w.u32(b.boot_id);
  w.u32(b.capabilities);
  w.u16(b.max_payload_bytes);
  return with_prefix(rs, std::move(w));
}

std::vector<std::uint8_t> encode_response(const ResponseStatus& rs, const GetStatusResponse& b) {
  Writer w;
  w.u8(b.state_flags);
  w.u32(b.boot_id);
  w.u32(b.uptime_ms);
  w.u32(b.watchdog_timeout_ms);
  return with_prefix(rs, std::move(w));
}

std::vector<std::uint8_t> encode_response(const ResponseStatus& rs, const Configuration& b) {
  Writer w;
  put(w, b);
  return with_prefix(rs, std::move(w));
}

std::vector<std::uint8_t> encode_response(const ResponseStatus& rs, const LevelTable& b) {
  Writer w;
  put_levels(w, b.levels, "SET_LEVELS response");
  return with_prefix(rs, std::move(w));
}

std::vector<std::uint8_t> encode_response(const ResponseStatus& rs, const PulseResponse& b) {
  Writer w;
  w.u32(b.batch_id);
  w.u16(b.cells_done);
  return with_prefix(rs, std::move(w));
}

std::vector<std::uint8_t> encode_response(const ResponseStatus& rs, const ReadResponse& b) {
  Writer w;
  w.u8(b.tia_range);
  w.u16(b.offset);
  w.u16(checked_count(b.codes, kMaxReadCodesPerResponse, "READ codes", 0));
  for (auto c : b.codes) w.u16(c);
  return with_prefix(rs, std::move(w));
}

std::vector<std::uint8_t> encode_response(const ResponseStatus& rs,
                                          const ProgramVerifyResponse& b) {
  Writer w;
  w.u32(b.batch_id);
  w.u8(b.tia_range);
  w.u16(checked_count(b.results, kMaxProgramVerifyEntries, "PROGRAM_VERIFY results", 0));
  for (const auto& res : b.results) {
    if (res.attempts > kMaxAttemptsLimit) encode_error("PROGRAM_VERIFY attempts above 127");
    w.u16(res.code);
    w.u8(static_cast<std::uint8_t>(res.attempts | (res.passed ? 0x80 : 0)));
  }
  w.u8(static_cast<std::uint8_t>((b.has_trace ? 0x01 : 0) | (b.trace_truncated ? 0x02 : 0)));
  if (!b.has_trace && !b.trace.empty()) encode_error("PROGRAM_VERIFY trace without has_trace");
  w.u16(checked_count(b.trace, 0xFFFF, "PROGRAM_VERIFY trace", 0));
  for (const auto& t : b.trace) {
    w.u16(t.entry);
    w.u8(static_cast<std::uint8_t>(t.pulse));
    w.u16(t.code);
  }
  return with_prefix(rs, std::move(w));
}

std::vector<std::uint8_t> encode_response(const ResponseStatus& rs, const ReadCountersResponse& b) {
  Writer w;
  w.u16(b.offset);
  w.u16(checked_count(b.counters, kMaxCountersPerResponse, "READ_COUNTERS entries", 0));
  for (const auto& c : b.counters) {
    w.u32(c.set_pulses);
    w.u32(c.reset_pulses);
    w.u16(c.form_pulses);
  }
  return with_prefix(rs, std::move(w));
}

std::vector<std::uint8_t> encode_response(const ResponseStatus& rs, const BatchStatusResponse& b) {
  Writer w;
  w.u32(b.batch_id);
  w.u8(static_cast<std::uint8_t>(b.state));
  w.u32(b.cells_done);
  w.u32(b.cells_total);
  return with_prefix(rs, std::move(w));
}

std::vector<std::uint8_t> encode_response(const ResponseStatus& rs, const EmptyBody&) {
  return with_prefix(rs, Writer{});
}

std::vector<std::uint8_t> encode_error_response(const ResponseStatus& rs) {
  if (rs.status == Status::kOk) encode_error("encode_error_response with status ok");
  Writer w;
  w.u8(static_cast<std::uint8_t>(rs.status));
  w.u32(rs.boot_id);
  w.u32(rs.error_detail);
  return w.take();
}

Decoded<ResponseStatus> decode_response_status(std::span<const std::uint8_t> p) {
  Reader r(p);
  ResponseStatus rs;
  rs.status = static_cast<Status>(r.u8());
  rs.boot_id = r.u32();
  if (!r.ok() || rs.status == Status::kOk) {
    Decoded<ResponseStatus> d;
    if (r.ok()) {
      d.value = rs;
    } else {
      d.status = Status::kBadLength;
      d.error = "response shorter than its 5-byte prefix";
    }
    return d;
  }
  rs.error_detail = r.u32();
  return r.finish(std::move(rs));
}

// ---- Response body decoders ----
template <>
Decoded<IdentifyResponse> decode_response<IdentifyResponse>(std::span<const std::uint8_t> p) {
  Reader r(p);
  IdentifyResponse v;
  if (get_ok_prefix(r)) {
    v.protocol_version = r.u8();
    v.model = r.str("model");
    v.serial = r.str("serial");
    v.firmware_version = r.str("firmware_version");
    v.rows = r.u16();
    v.cols = r.u16();
    v.adc_bits = r.u8();
    v.dac_bits = r.u8();
    const std::uint8_t n_tia = r.u8();
    if (r.ok() && (n_tia < 1 || n_tia > kMaxTiaRanges)) {
      r.fail(Status::kBadArgument, "TIA range count " + std::to_string(n_tia) + " outside 1..8");
    }
    if (r.ok()) v.tia_ranges.resize(n_tia);
    for (auto& t : v.tia_ranges) {
      t.full_scale_na = r.u32();
      t.nanoamps_per_code = r.f32();
      t.zero_code = r.u16();
    }
    v.levels = get_levels(r);
    auto& m = v.limits;
    m.read_voltage_min_mv = r.u16();
    m.read_voltage_max_mv = r.u16();
    m.bit_line_max_mv = r.u16();
    m.source_line_max_mv = r.u16();
    m.word_line_max_mv = r.u16();
    m.pulse_width_min_ns = r.u32();
    m.pulse_width_max_ns = r.u32();
    m.max_attempts = r.u8();
    m.watchdog_min_ms = r.u32();
    m.watchdog_max_ms = r.u32();
    v.boot_id = r.u32();
    v.capabilities = r.u32();
    v.max_payload_bytes = r.u16();
  }
  return r.finish(std::move(v));
}

template <>
Decoded<GetStatusResponse> decode_response<GetStatusResponse>(std::span<const std::uint8_t> p) {
  Reader r(p);
  GetStatusResponse v;
  if (get_ok_prefix(r)) {
    v.state_flags = r.u8();
    v.boot_id = r.u32();
    v.uptime_ms = r.u32();
    v.watchdog_timeout_ms = r.u32();
  }
  return r.finish(std::move(v));
}

template <>
Decoded<Configuration> decode_response<Configuration>(std::span<const std::uint8_t> p) {
  Reader r(p);
  Configuration v;
  if (get_ok_prefix(r)) v = get_configuration(r);
  return r.finish(std::move(v));
}

template <>
Decoded<LevelTable> decode_response<LevelTable>(std::span<const std::uint8_t> p) {
  Reader r(p);
  LevelTable v;
  if (get_ok_prefix(r)) v.levels = get_levels(r);
  return r.finish(std::move(v));
}

template <>
Decoded<PulseResponse> decode_response<PulseResponse>(std::span<const std::uint8_t> p) {
  Reader r(p);
  PulseResponse v;
  if (get_ok_prefix(r)) {
    v.batch_id = r.u32();
    v.cells_done = r.u16();
  }
  return r.finish(std::move(v));
}

template <>
Decoded<ReadResponse> decode_response<ReadResponse>(std::span<const std::uint8_t> p) {
  Reader r(p);
  ReadResponse v;
  if (get_ok_prefix(r)) {
    v.tia_range = r.u8();
    v.offset = r.u16();
    const std::uint16_t n = r.count(0, kMaxReadCodesPerResponse, 2, "READ codes");
    v.codes.resize(n);
    for (auto& c : v.codes) c = r.u16();
  }
  return r.finish(std::move(v));
}

template <>
Decoded<ProgramVerifyResponse> decode_response<ProgramVerifyResponse>(
    std::span<const std::uint8_t> p) {
  Reader r(p);
  ProgramVerifyResponse v;
  if (get_ok_prefix(r)) {
    v.batch_id = r.u32();
    v.tia_range = r.u8();
    const std::uint16_t n = r.count(0, kMaxProgramVerifyEntries, 3, "PROGRAM_VERIFY results");
    v.results.resize(n);
    for (auto& res : v.results) {
      res.code = r.u16();
      const std::uint8_t ap = r.u8();
      res.attempts = ap & 0x7F;
      res.passed = (ap & 0x80) != 0;
    }
    const std::uint8_t flags = r.u8();
    if (r.ok() && (flags & ~0x03) != 0) {
      // Reserved bits would be lost on re-encoding; a newer board must not be misread.
      r.fail(Status::kBadArgument, "PROGRAM_VERIFY trace_flags has reserved bits set");
    }
    v.has_trace = (flags & 0x01) != 0;
    v.trace_truncated = (flags & 0x02) != 0;
    const std::uint16_t nt = r.count(0, 0xFFFF, 5, "PROGRAM_VERIFY trace");
    if (r.ok() && !v.has_trace && nt != 0) {
      r.fail(Status::kBadArgument, "PROGRAM_VERIFY trace entries without the PRESENT flag");
    }
    if (r.ok()) v.trace.resize(nt);
    for (auto& t : v.trace) {
      t.entry = r.u16();
      const std::uint8_t pulse = r.u8();
      if (r.ok() && pulse != static_cast<std::uint8_t>(PulseKind::kSet) &&
          pulse != static_cast<std::uint8_t>(PulseKind::kReset)) {
        r.fail(Status::kBadArgument, "trace pulse kind " + std::to_string(pulse));
      }
      t.pulse = static_cast<PulseKind>(pulse);
      t.code = r.u16();
    }
  }
  return r.finish(std::move(v));
}

template <>
Decoded<ReadCountersResponse> decode_response<ReadCountersResponse>(
    std::span<const std::uint8_t> p) {
  Reader r(p);
  ReadCountersResponse v;
  if (get_ok_prefix(r)) {
    v.offset = r.u16();
    const std::uint16_t n = r.count(0, kMaxCountersPerResponse, 10, "READ_COUNTERS entries");
    v.counters.resize(n);
    for (auto& c : v.counters) {
      c.set_pulses = r.u32();
      c.reset_pulses = r.u32();
      c.form_pulses = r.u16();
    }
  }
  return r.finish(std::move(v));
}

template <>
Decoded<BatchStatusResponse> decode_response<BatchStatusResponse>(std::span<const std::uint8_t> p) {
  Reader r(p);
  BatchStatusResponse v;
  if (get_ok_prefix(r)) {
    v.batch_id = r.u32();
    const std::uint8_t state = r.u8();
    if (r.ok() && state > static_cast<std::uint8_t>(BatchState::kDone)) {
      r.fail(Status::kBadArgument, "batch state " + std::to_string(state));
    }
    v.state = static_cast<BatchState>(state);
    v.cells_done = r.u32();
    v.cells_total = r.u32();
  }
  return r.finish(std::move(v));
}

template <>
Decoded<EmptyBody> decode_response<EmptyBody>(std::span<const std::uint8_t> p) {
  Reader r(p);
  get_ok_prefix(r);
  return r.finish(EmptyBody{});
}

std::vector<std::uint8_t> encode_response_frame(std::uint16_t sequence, Opcode opcode,
                                                std::span<const std::uint8_t> response_payload,
                                                bool more_fragments) {
  if (response_payload.empty()) encode_error("response payload without its status prefix");
  FrameHeader h;
  h.opcode = static_cast<std::uint8_t>(opcode);
  h.sequence = sequence;
  h.flags = frame_flags::kResponse;
  if (response_payload[0] != static_cast<std::uint8_t>(Status::kOk)) h.flags |= frame_flags::kError;
  if (more_fragments) h.flags |= frame_flags::kMoreFragments;
  return encode_frame(h, response_payload);
}

// ---- Boot id guard ----
bool carries_expected_boot_id(Opcode opcode) {
  return opcode == Opcode::kForm || opcode == Opcode::kSet || opcode == Opcode::kReset ||
         opcode == Opcode::kProgramVerify;
}

namespace {
template <class Request>
std::optional<std::vector<std::uint8_t>> restamped(std::span<const std::uint8_t> payload,
                                                   std::uint32_t boot_id) {
  auto decoded = decode<Request>(payload);
  if (!decoded) return std::nullopt;
  decoded.value->expected_boot_id = boot_id;
  return encode(*decoded.value);
}
}  // namespace

std::optional<std::vector<std::uint8_t>> with_expected_boot_id(
    Opcode opcode, std::span<const std::uint8_t> payload, std::uint32_t boot_id) {
  switch (opcode) {
    case Opcode::kForm:
      return restamped<FormRequest>(payload, boot_id);
    case Opcode::kSet:
      return restamped<SetRequest>(payload, boot_id);
    case Opcode::kReset:
      return restamped<ResetRequest>(payload, boot_id);
    case Opcode::kProgramVerify:
      return restamped<ProgramVerifyRequest>(payload, boot_id);
    default:
      return std::nullopt;
  }
}

namespace {

constexpr auto kOpcodeNames = common::enum_table<Opcode>({
    {Opcode::kIdentify, "IDENTIFY"},
    {Opcode::kGetStatus, "GET_STATUS"},
    {Opcode::kConfigure, "CONFIGURE"},
    {Opcode::kGetConfiguration, "GET_CONFIGURATION"},
    {Opcode::kSetLevels, "SET_LEVELS"},
    {Opcode::kForm, "FORM"},
    {Opcode::kSet, "SET"},
    {Opcode::kReset, "RESET"},
    {Opcode::kRead, "READ"},
    {Opcode::kProgramVerify, "PROGRAM_VERIFY"},
    {Opcode::kReadCounters, "READ_COUNTERS"},
    {Opcode::kBatchStatus, "BATCH_STATUS"},
    {Opcode::kSafeState, "SAFE_STATE"},
    {Opcode::kWatchdogArm, "WATCHDOG_ARM"},
    {Opcode::kWatchdogKick, "WATCHDOG_KICK"},
});

constexpr auto kStatusNames = common::enum_table<Status>({
    {Status::kOk, "ok"},
    {Status::kBadCrc, "bad_crc"},
    {Status::kBadLength, "bad_length"},
    {Status::kUnknownOpcode, "unknown_opcode"},
    {Status::kOutOfLimits, "out_of_limits"},
    {Status::kBusy, "busy"},
    {Status::kNotFormed, "not_formed"},
    {Status::kBadCellAddress, "bad_cell_address"},
    {Status::kWatchdogTripped, "watchdog_tripped"},
    {Status::kUnsupportedVersion, "unsupported_version"},
    {Status::kBadArgument, "bad_argument"},
    {Status::kBatchOutOfOrder, "batch_out_of_order"},
    {Status::kSequenceReused, "sequence_reused"},
    {Status::kNotSupported, "not_supported"},
    {Status::kInternalError, "internal_error"},
    {Status::kBootIdMismatch, "boot_id_mismatch"},
});

constexpr auto kBatchStateNames = common::enum_table<BatchState>({
    {BatchState::kUnknown, "unknown"},
    {BatchState::kInProgress, "in_progress"},
    {BatchState::kDone, "done"},
});

}  // namespace

const char* to_string(Opcode op) { return common::enum_name(kOpcodeNames, op, "unknown opcode"); }

const char* to_string(Status s) { return common::enum_name(kStatusNames, s, "unknown status"); }

const char* to_string(BatchState s) {
  return common::enum_name(kBatchStateNames, s, "invalid batch state");
}

}  // namespace metaplast::protocols
