// Framing layer: CRCs against their published check values, golden frames from
// docs/protocol.md (CRCs computed independently with Python's binascii), and the stream
// decoder's behaviour under garbage, truncation, bit flips, lost bytes and odd chunking.
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "protocols/board_messages.hpp"
#include "protocols/frame.hpp"

using namespace metaplast::protocols;
using Bytes = std::vector<std::uint8_t>;

namespace {

Bytes ascii(const std::string& s) { return Bytes(s.begin(), s.end()); }

std::vector<Frame> frames_of(const std::vector<DecodeEvent>& events) {
  std::vector<Frame> out;
  for (const auto& e : events)
    if (auto* f = std::get_if<Frame>(&e)) out.push_back(*f);
  return out;
}

std::size_t count_errors(const std::vector<DecodeEvent>& events, DecodeErrorKind kind) {
  std::size_t n = 0;
  for (const auto& e : events)
    if (auto* d = std::get_if<DecodeError>(&e); d && d->kind == kind) ++n;
  return n;
}

std::size_t garbage_bytes(const std::vector<DecodeEvent>& events) {
  std::size_t n = 0;
  for (const auto& e : events)
    if (auto* d = std::get_if<DecodeError>(&e); d && d->kind == DecodeErrorKind::kGarbage)
      n += d->bytes_skipped;
  return n;
}

Bytes make_frame(std::uint16_t seq, std::uint8_t opcode, Bytes payload) {
  FrameHeader h;
  h.sequence = seq;
  h.opcode = opcode;
  return encode_frame(h, payload);
}

// Golden frames of docs/protocol.md section 2 (CRCs from binascii.crc_hqx / binascii.crc32).
const Bytes kIdentifySeq1 = {0xa5, 0x01, 0x00, 0x01, 0x01, 0x00, 0x00,
                             0x00, 0xed, 0x9b, 0xdc, 0xa2, 0xa6, 0x5a};
const Bytes kReadArraySeq1234 = {0xa5, 0x01, 0x00, 0x13, 0x34, 0x12, 0x0d, 0x00, 0xc7,
                                 0x10, 0x01, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x80,
                                 0x00, 0x00, 0x00, 0x00, 0x08, 0xa4, 0x7f, 0xd7, 0xba};
const Bytes kErrorUnknownOpcode = {0xa5, 0x01, 0x03, 0x7f, 0x02, 0x00, 0x09, 0x00,
                                   0x67, 0xa6, 0x03, 0xef, 0xbe, 0xad, 0xde, 0x00,
                                   0x00, 0x00, 0x00, 0x7e, 0x6d, 0x99, 0xc7};

}  // namespace

TEST_CASE("CRCs match their published check values") {
  const Bytes check = ascii("123456789");
  CHECK(crc16_ccitt(check) == 0x29B1);
  CHECK(crc32(check) == 0xCBF43926u);
  // Running CRC-32 over two pieces equals one pass.
  const Bytes a = ascii("12345"), b = ascii("6789");
  CHECK(crc32(b, crc32(a)) == 0xCBF43926u);
  CHECK(crc32(Bytes{}) == 0u);
}

TEST_CASE("golden frames encode and decode byte for byte") {
  CHECK(encode_request_frame(1, IdentifyRequest{}) == kIdentifySeq1);
  ReadRequest read;
  read.selection = Selection::array();
  read.max_count = 2048;
  CHECK(encode_request_frame(0x1234, read) == kReadArraySeq1234);

  Frame f;
  REQUIRE(decode_frame(kReadArraySeq1234, f));
  CHECK(f.header.version == 1);
  CHECK(f.header.flags == 0);
  CHECK(f.header.opcode == 0x13);
  CHECK(f.header.sequence == 0x1234);
  CHECK(f.header.payload_length == 13);
  const auto d = decode<ReadRequest>(f.payload);
  REQUIRE(d);
  CHECK(*d.value == read);

  // An error response to an unknown opcode sets RESPONSE and ERROR.
  ResponseStatus rs{Status::kUnknownOpcode, 0xDEADBEEF, 0};
  CHECK(encode_response_frame(2, static_cast<Opcode>(0x7F), encode_error_response(rs)) ==
        kErrorUnknownOpcode);
  REQUIRE(decode_frame(kErrorUnknownOpcode, f));
  CHECK(f.header.flags == (frame_flags::kResponse | frame_flags::kError));
  const auto st = decode_response_status(f.payload);
  REQUIRE(st);
  CHECK(*st.value == rs);
}

TEST_CASE("decode_frame rejects any single corrupted bit") {
  for (std::size_t byte = 0; byte < kReadArraySeq1234.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes bad = kReadArraySeq1234;
      bad[byte] ^= static_cast<std::uint8_t>(1u << bit);
      Frame f;
      CHECK_FALSE(decode_frame(bad, f));
    }
  }
}

TEST_CASE("encode_frame refuses payloads above the maximum") {
  FrameHeader h;
  CHECK_NOTHROW(encode_frame(h, Bytes(kMaxPayloadBytes, 0x5A)));
  CHECK_THROWS_AS(encode_frame(h, Bytes(kMaxPayloadBytes + 1, 0x5A)), std::invalid_argument);
}

TEST_CASE("stream decoder yields the same frames whatever the chunking") {
  Bytes stream;
  for (std::uint16_t seq = 0; seq < 5; ++seq) {
    Bytes payload(seq * 37, static_cast<std::uint8_t>(0xA5));  // payload full of SOF bytes
    const auto f = make_frame(seq, 0x13, payload);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  for (std::size_t chunk = 1; chunk <= stream.size(); chunk += (chunk < 20 ? 1 : 97)) {
    StreamDecoder dec;
    std::vector<DecodeEvent> events;
    for (std::size_t i = 0; i < stream.size(); i += chunk) {
      auto ev = dec.feed(std::span(stream).subspan(i, std::min(chunk, stream.size() - i)));
      events.insert(events.end(), ev.begin(), ev.end());
    }
    const auto frames = frames_of(events);
    INFO("chunk " << chunk);
    REQUIRE(frames.size() == 5);
    for (std::uint16_t seq = 0; seq < 5; ++seq) {
      CHECK(frames[seq].header.sequence == seq);
      CHECK(frames[seq].payload.size() == seq * 37u);
    }
    CHECK(events.size() == 5);  // no spurious errors
    CHECK(dec.buffered_bytes() == 0);
  }
}

TEST_CASE("a frame split at every byte boundary decodes once") {
  const Bytes f = make_frame(7, 0x11, Bytes{1, 2, 3, 0xA5, 4});
  for (std::size_t cut = 0; cut <= f.size(); ++cut) {
    StreamDecoder dec;
    auto first = dec.feed(std::span(f).first(cut));
    auto second = dec.feed(std::span(f).subspan(cut));
    first.insert(first.end(), second.begin(), second.end());
    INFO("cut at " << cut);
    REQUIRE(frames_of(first).size() == 1);
    CHECK(first.size() == 1);
  }
}

TEST_CASE("garbage before and between frames is skipped and counted") {
  const Bytes garbage = {0x00, 0xA5, 0x01, 0xFF, 0xA5, 0xA5, 0x13, 0x37};
  Bytes stream = garbage;
  const Bytes f1 = make_frame(1, 0x01, {});
  const Bytes f2 = make_frame(2, 0x02, {9, 9});
  stream.insert(stream.end(), f1.begin(), f1.end());
  stream.insert(stream.end(), garbage.begin(), garbage.end());
  stream.insert(stream.end(), f2.begin(), f2.end());
  StreamDecoder dec;
  const auto events = dec.feed(stream);
  const auto frames = frames_of(events);
  REQUIRE(frames.size() == 2);
  CHECK(frames[0].header.sequence == 1);
  CHECK(frames[1].payload == Bytes{9, 9});
  CHECK(garbage_bytes(events) == 2 * garbage.size());
  CHECK(dec.stats().garbage_bytes == 2 * garbage.size());
  // Garbage is reported before the frame it precedes.
  REQUIRE(std::holds_alternative<DecodeError>(events.front()));
}

TEST_CASE("a bit flip anywhere costs only the frame it hits") {
  const Bytes f1 = make_frame(1, 0x13, Bytes(40, 0x11));
  const Bytes f2 = make_frame(2, 0x13, Bytes(40, 0x22));
  for (std::size_t byte = 0; byte < f1.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes stream = f1;
      stream[byte] ^= static_cast<std::uint8_t>(1u << bit);
      stream.insert(stream.end(), f2.begin(), f2.end());
      StreamDecoder dec;
      const auto events = dec.feed(stream);
      const auto frames = frames_of(events);
      INFO("byte " << byte << " bit " << bit);
      REQUIRE(frames.size() == 1);
      CHECK(frames[0].header.sequence == 2);
      CHECK(frames[0].payload == Bytes(40, 0x22));
      // A payload/trailer hit with an intact header is reported with the header (for a NACK).
      if (byte >= kHeaderBytes) {
        REQUIRE(count_errors(events, DecodeErrorKind::kFrameCrcMismatch) == 1);
        for (const auto& e : events)
          if (auto* d = std::get_if<DecodeError>(&e);
              d && d->kind == DecodeErrorKind::kFrameCrcMismatch)
            CHECK(d->header.sequence == 1);
      }
    }
  }
}

TEST_CASE("a lost or an extra byte inside a frame does not hide the next frame") {
  const Bytes f1 = make_frame(1, 0x13, Bytes(100, 0x33));
  const Bytes f2 = make_frame(2, 0x13, Bytes(3, 0x44));
  for (std::size_t pos = 0; pos < f1.size(); pos += 7) {
    Bytes lost = f1;
    lost.erase(lost.begin() + static_cast<std::ptrdiff_t>(pos));
    lost.insert(lost.end(), f2.begin(), f2.end());
    Bytes extra = f1;
    extra.insert(extra.begin() + static_cast<std::ptrdiff_t>(pos), 0xA5);
    extra.insert(extra.end(), f2.begin(), f2.end());
    for (const Bytes* s : {&lost, &extra}) {
      StreamDecoder dec;
      const auto frames = frames_of(dec.feed(*s));
      INFO("position " << pos);
      // The damaged frame may survive only if the change was outside it (extra byte before SOF).
      REQUIRE_FALSE(frames.empty());
      CHECK(frames.back().header.sequence == 2);
      CHECK(frames.back().payload == Bytes(3, 0x44));
    }
  }
}

TEST_CASE("an oversize length with a valid header CRC is rejected, then resync") {
  // A header claiming 5000 bytes, correctly CRC'd: must not swallow the following frame.
  Bytes bad = {kStartOfFrame, 1, 0, 0x13, 0x01, 0x00, 0x88, 0x13};  // length 0x1388 = 5000
  const std::uint16_t hcrc = crc16_ccitt(bad);
  bad.push_back(static_cast<std::uint8_t>(hcrc & 0xFF));
  bad.push_back(static_cast<std::uint8_t>(hcrc >> 8));
  const Bytes good = make_frame(9, 0x01, {});
  Bytes stream = bad;
  stream.insert(stream.end(), good.begin(), good.end());
  StreamDecoder dec;
  const auto events = dec.feed(stream);
  CHECK(count_errors(events, DecodeErrorKind::kOversizeLength) == 1);
  const auto frames = frames_of(events);
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].header.sequence == 9);

  // A decoder configured for a smaller board maximum rejects lengths above it.
  StreamDecoder small(64);
  const auto ev = small.feed(make_frame(3, 0x13, Bytes(65, 0)));
  CHECK(count_errors(ev, DecodeErrorKind::kOversizeLength) == 1);
  CHECK(frames_of(ev).empty());
}

TEST_CASE("truncated frames wait, never produce a frame, and reset() drops them") {
  const Bytes f = make_frame(4, 0x13, Bytes(200, 0x55));
  StreamDecoder dec;
  CHECK(dec.feed(std::span(f).first(f.size() - 1)).empty());
  CHECK(dec.buffered_bytes() == f.size() - 1);
  dec.reset();
  CHECK(dec.buffered_bytes() == 0);
  const auto frames = frames_of(dec.feed(f));
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].header.sequence == 4);
}

TEST_CASE("random garbage never crashes the decoder and frames after it are recovered") {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int round = 0; round < 200; ++round) {
    Bytes stream(static_cast<std::size_t>(byte(rng)) * 40);
    for (auto& b : stream) b = static_cast<std::uint8_t>(byte(rng) < 32 ? 0xA5 : byte(rng));
    const Bytes f = make_frame(static_cast<std::uint16_t>(round), 0x13, Bytes(17, 0x66));
    // A candidate header inside the garbage may claim up to 4 KiB; two maximum frames of
    // silence-breaking filler (non-SOF bytes) flush any such candidate.
    stream.insert(stream.end(), f.begin(), f.end());
    StreamDecoder dec;
    auto events = dec.feed(stream);
    auto more = dec.feed(Bytes(kMaxFrameBytes, 0x00));
    events.insert(events.end(), more.begin(), more.end());
    bool found = false;
    for (const auto& fr : frames_of(events))
      found |= fr.header.sequence == round && fr.payload == Bytes(17, 0x66);
    INFO("round " << round);
    CHECK(found);
    CHECK(dec.buffered_bytes() < kMaxFrameBytes);
  }
}

TEST_CASE("the decoder's memory stays bounded whatever is fed at once") {
  StreamDecoder dec;
  // A valid header claiming the maximum length, then a megabyte with no end to it.
  Bytes stream = make_frame(1, 0x13, Bytes(kMaxPayloadBytes, 0x77));
  stream.resize(stream.size() - 1);  // lose the last CRC byte
  stream.resize(1 << 20, 0xA5);
  dec.feed(stream);
  CHECK(dec.buffered_bytes() <= 2 * kMaxFrameBytes);
}
