// Board wire protocol, framing layer: frame layout, CRCs and the incremental stream decoder.
// The normative description is docs/protocol.md; this header implements section "Framing".
//
//   offset size  field
//   0      1     SOF = 0xA5
//   1      1     protocol version (1)
//   2      1     flags (bit0 response, bit1 error, bit2 more fragments; others 0)
//   3      1     opcode
//   4      2     sequence number (u16 LE)
//   6      2     payload length N (u16 LE, <= kMaxPayloadBytes)
//   8      2     header CRC: CRC-16/CCITT-FALSE over bytes 0..7 (u16 LE)
//   10     N     payload
//   10+N   4     frame CRC: CRC-32 (ISO-HDLC, as zlib) over bytes 0..9+N (u32 LE)
//
// Pure functions, no I/O, no device state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

namespace metaplast::protocols {

inline constexpr std::uint8_t kStartOfFrame = 0xA5;
inline constexpr std::uint8_t kProtocolVersion = 1;
inline constexpr std::size_t kHeaderBytes = 10;
inline constexpr std::size_t kTrailerBytes = 4;
inline constexpr std::size_t kFrameOverheadBytes = kHeaderBytes + kTrailerBytes;  // 14
// 4 KiB of data (2048 ADC codes) plus room for a message prefix.
inline constexpr std::size_t kMaxPayloadBytes = 4160;
inline constexpr std::size_t kMaxFrameBytes = kMaxPayloadBytes + kFrameOverheadBytes;

// Header flag bits.
namespace frame_flags {
inline constexpr std::uint8_t kResponse = 0x01;       // set on every board -> host frame
inline constexpr std::uint8_t kError = 0x02;          // response status != ok
inline constexpr std::uint8_t kMoreFragments = 0x04;  // more data beyond this response (reads)
}  // namespace frame_flags

struct FrameHeader {
  std::uint8_t version = kProtocolVersion;
  std::uint8_t flags = 0;
  std::uint8_t opcode = 0;
  std::uint16_t sequence = 0;
  std::uint16_t payload_length = 0;  // filled in by encode_frame
};

struct Frame {
  FrameHeader header;
  std::vector<std::uint8_t> payload;
};

// CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, xorout 0. check("123456789")=0x29B1.
std::uint16_t crc16_ccitt(std::span<const std::uint8_t> bytes);
// CRC-32/ISO-HDLC (zlib crc32): poly 0x04C11DB7 reflected, init/xorout 0xFFFFFFFF.
// check("123456789")=0xCBF43926. `prior` continues a running CRC (pass the previous result).
std::uint32_t crc32(std::span<const std::uint8_t> bytes, std::uint32_t prior = 0);

// Encodes one complete frame (header.payload_length is ignored and set from payload.size()).
// Throws std::invalid_argument if payload.size() > kMaxPayloadBytes.
std::vector<std::uint8_t> encode_frame(const FrameHeader& header,
                                       std::span<const std::uint8_t> payload);
// Appends one complete frame to `out` (same rules as encode_frame).
void append_frame(std::vector<std::uint8_t>& out, const FrameHeader& header,
                  std::span<const std::uint8_t> payload);

// Decodes exactly one complete frame held in `bytes` (no leading/trailing bytes). Returns false
// if SOF, either CRC or the length does not match.
bool decode_frame(std::span<const std::uint8_t> bytes, Frame& out);

enum class DecodeErrorKind : std::uint8_t {
  kGarbage,         // bytes dropped that were not part of any valid frame (count in bytes_skipped)
  kOversizeLength,  // header CRC valid but payload length > the decoder's maximum
  kFrameCrcMismatch,  // header valid, CRC-32 wrong: `header` tells who to NACK (status bad_crc)
};

struct DecodeError {
  DecodeErrorKind kind = DecodeErrorKind::kGarbage;
  std::size_t bytes_skipped = 0;  // for kGarbage
  FrameHeader header;             // for kOversizeLength and kFrameCrcMismatch
};

using DecodeEvent = std::variant<Frame, DecodeError>;

struct DecoderStats {
  std::uint64_t frames = 0;
  std::uint64_t garbage_bytes = 0;
  std::uint64_t oversize_errors = 0;
  std::uint64_t crc_errors = 0;
};

// Incremental decoder for a byte stream. Feed bytes in arbitrary chunks; it returns complete
// frames and typed errors in stream order. After any error it rescans from the byte after the
// rejected SOF, so a lost, extra or corrupted byte costs at most the frame it hit. Never throws
// on input, never holds more than 2 * kMaxFrameBytes bytes, whatever is fed.
class StreamDecoder {
 public:
  // max_payload_bytes: lengths above it are rejected as kOversizeLength (<= kMaxPayloadBytes).
  explicit StreamDecoder(std::size_t max_payload_bytes = kMaxPayloadBytes);

  // Consumes `bytes` and returns every event completed by them, in order. A kGarbage event is
  // emitted before the next frame/error, or at the end of the call if garbage is pending.
  std::vector<DecodeEvent> feed(std::span<const std::uint8_t> bytes);

  // Drops any partial frame (e.g. after a transport reconnect).
  void reset();

  // Bytes held waiting for the rest of a candidate frame.
  std::size_t buffered_bytes() const { return buffer_.size() - start_; }
  const DecoderStats& stats() const { return stats_; }

 private:
  void parse(std::vector<DecodeEvent>& events);
  void flush_garbage(std::vector<DecodeEvent>& events);

  std::size_t max_payload_bytes_;
  std::vector<std::uint8_t> buffer_;
  std::size_t start_ = 0;  // first unconsumed byte in buffer_
  std::size_t pending_garbage_ = 0;
  DecoderStats stats_;
};

}  // namespace metaplast::protocols
