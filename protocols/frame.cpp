#include "protocols/frame.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>

namespace metaplast::protocols {
namespace {

constexpr std::array<std::uint16_t, 256> make_crc16_table() {
  std::array<std::uint16_t, 256> table{};
  for (unsigned i = 0; i < 256; ++i) {
    std::uint16_t crc = static_cast<std::uint16_t>(i << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<std::uint16_t>(crc << 1);
    }
    table[i] = crc;
  }
  return table;
}

constexpr std::array<std::uint32_t, 256> make_crc32_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 1u) ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
    table[i] = crc;
  }
  return table;
}

constexpr auto kCrc16Table = make_crc16_table();
constexpr auto kCrc32Table = make_crc32_table();

std::uint16_t load_u16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
std::uint32_t load_u32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

// Header fields from 10 bytes whose SOF and header CRC are already checked.
FrameHeader header_from(const std::uint8_t* p) {
  FrameHeader h;
  h.version = p[1];
  h.flags = p[2];
  h.opcode = p[3];
  h.sequence = load_u16(p + 4);
  h.payload_length = load_u16(p + 6);
  return h;
}

bool header_crc_ok(const std::uint8_t* p) { return crc16_ccitt({p, 8}) == load_u16(p + 8); }

}  // namespace

std::uint16_t crc16_ccitt(std::span<const std::uint8_t> bytes) {
  std::uint16_t crc = 0xFFFF;
  for (std::uint8_t b : bytes) {
    crc = static_cast<std::uint16_t>((crc << 8) ^ kCrc16Table[((crc >> 8) ^ b) & 0xFF]);
  }
  return crc;
}

std::uint32_t crc32(std::span<const std::uint8_t> bytes, std::uint32_t prior) {
  std::uint32_t crc = ~prior;
  for (std::uint8_t b : bytes) crc = (crc >> 8) ^ kCrc32Table[(crc ^ b) & 0xFF];
  return ~crc;
}

void append_frame(std::vector<std::uint8_t>& out, const FrameHeader& header,
                  std::span<const std::uint8_t> payload) {
  if (payload.size() > kMaxPayloadBytes) {
    throw std::invalid_argument("encode_frame: payload of " + std::to_string(payload.size()) +
                                " bytes exceeds the protocol maximum of " +
                                std::to_string(kMaxPayloadBytes) +
                                " bytes; split the request (see docs/protocol.md section 2)");
  }
  const std::size_t start = out.size();
  const auto length = static_cast<std::uint16_t>(payload.size());
  out.reserve(start + payload.size() + kFrameOverheadBytes);
  out.push_back(kStartOfFrame);
  out.push_back(header.version);
  out.push_back(header.flags);
  out.push_back(header.opcode);
  out.push_back(static_cast<std::uint8_t>(header.sequence & 0xFF));
  out.push_back(static_cast<std::uint8_t>(header.sequence >> 8));
  out.push_back(static_cast<std::uint8_t>(length & 0xFF));
  out.push_back(static_cast<std::uint8_t>(length >> 8));
  const std::uint16_t hcrc = crc16_ccitt({out.data() + start, 8});
  out.push_back(static_cast<std::uint8_t>(hcrc & 0xFF));
  out.push_back(static_cast<std::uint8_t>(hcrc >> 8));
  out.insert(out.end(), payload.begin(), payload.end());
  const std::uint32_t fcrc = crc32({out.data() + start, out.size() - start});
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(fcrc >> (8 * i)));
}

std::vector<std::uint8_t> encode_frame(const FrameHeader& header,
                                       std::span<const std::uint8_t> payload) {
  std::vector<std::uint8_t> out;
  append_frame(out, header, payload);
  return out;
}

bool decode_frame(std::span<const std::uint8_t> bytes, Frame& out) {
  if (bytes.size() < kFrameOverheadBytes || bytes[0] != kStartOfFrame) return false;
  if (!header_crc_ok(bytes.data())) return false;
  const FrameHeader h = header_from(bytes.data());
  if (h.payload_length > kMaxPayloadBytes) return false;
  if (bytes.size() != kFrameOverheadBytes + h.payload_length) return false;
  const std::size_t body = kHeaderBytes + h.payload_length;
  if (crc32(bytes.first(body)) != load_u32(bytes.data() + body)) return false;
  out.header = h;
  out.payload.assign(bytes.begin() + kHeaderBytes, bytes.begin() + body);
  return true;
}

StreamDecoder::StreamDecoder(std::size_t max_payload_bytes)
    : max_payload_bytes_(std::min(max_payload_bytes, kMaxPayloadBytes)) {
  buffer_.reserve(2 * kMaxFrameBytes);
}

void StreamDecoder::reset() {
  buffer_.clear();
  start_ = 0;
  pending_garbage_ = 0;
}

void StreamDecoder::flush_garbage(std::vector<DecodeEvent>& events) {
  if (pending_garbage_ == 0) return;
  DecodeError e;
  e.kind = DecodeErrorKind::kGarbage;
  e.bytes_skipped = pending_garbage_;
  stats_.garbage_bytes += pending_garbage_;
  pending_garbage_ = 0;
  events.emplace_back(e);
}

std::vector<DecodeEvent> StreamDecoder::feed(std::span<const std::uint8_t> bytes) {
  std::vector<DecodeEvent> events;
  // Append in slices of at most one frame so the buffer stays bounded (< 2 frames) whatever
  // the caller feeds: parse() always consumes down to less than one candidate frame.
  while (!bytes.empty()) {
    const std::size_t take = std::min(bytes.size(), kMaxFrameBytes);
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.begin() + take);
    bytes = bytes.subspan(take);
    parse(events);
  }
  flush_garbage(events);
  return events;
}

void StreamDecoder::parse(std::vector<DecodeEvent>& events) {
  for (;;) {
    const std::uint8_t* base = buffer_.data();
    const std::size_t end = buffer_.size();
    // Hunt for SOF.
    std::size_t sof = start_;
    while (sof < end && base[sof] != kStartOfFrame) ++sof;
    pending_garbage_ += sof - start_;
    start_ = sof;
    if (start_ == end) break;
    if (end - start_ < kHeaderBytes) break;
    const std::uint8_t* p = base + start_;
    if (!header_crc_ok(p)) {  // a stray 0xA5: skip it, rescan
      ++pending_garbage_;
      ++start_;
      continue;
    }
    const FrameHeader h = header_from(p);
    if (h.payload_length > max_payload_bytes_) {
      flush_garbage(events);
      DecodeError e;
      e.kind = DecodeErrorKind::kOversizeLength;
      e.header = h;
      ++stats_.oversize_errors;
      events.emplace_back(e);
      ++start_;
      continue;
    }
    const std::size_t frame_bytes = kFrameOverheadBytes + h.payload_length;
    if (end - start_ < frame_bytes) break;
    const std::size_t body = kHeaderBytes + h.payload_length;
    if (crc32({p, body}) != load_u32(p + body)) {
      flush_garbage(events);
      DecodeError e;
      e.kind = DecodeErrorKind::kFrameCrcMismatch;
      e.header = h;
      ++stats_.crc_errors;
      events.emplace_back(e);
      // Only the SOF is dropped: a frame hidden behind a lost byte is found on the rescan.
      ++start_;
      continue;
    }
    flush_garbage(events);
    Frame f;
    f.header = h;
    f.payload.assign(p + kHeaderBytes, p + body);
    ++stats_.frames;
    events.emplace_back(std::move(f));
    start_ += frame_bytes;
  }
  // Compact: keep only the unconsumed tail (less than one frame).
  if (start_ > 0) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
}

}  // namespace metaplast::protocols
