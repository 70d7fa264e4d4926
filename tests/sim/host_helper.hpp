// A minimal test host for the simulated firmware: encodes requests with protocols/, feeds the
// bytes to a BoardFirmware and decodes what comes back (no retries unless a test does them).
#pragma once

#include <catch2/catch.hpp>
#include <optional>
#include <vector>

#include "protocols/board_messages.hpp"
#include "protocols/frame.hpp"
#include "sim/board_firmware.hpp"

namespace metaplast::sim::testing {

namespace p = metaplast::protocols;

inline devices::Calibration quiet_calibration() {
  devices::Calibration c = devices::Calibration::defaults();
  c.relaxation.enabled = false;
  c.yield.defect_fraction = 0.0;
  return c;
}

inline BoardFirmware make_board(std::uint64_t seed, bool formed = true,
                                devices::Calibration calibration = quiet_calibration(),
                                FirmwareOptions options = {}) {
  Chip chip(devices::DeviceModel(std::move(calibration)), seed);
  if (formed) chip.form_all_at_factory();
  return BoardFirmware(std::move(chip), std::move(options));
}

class TestHost {
 public:
  explicit TestHost(BoardFirmware& board) : board_(board) {}

  // Sends one request, returns every frame that came back.
  template <class Request>
  std::vector<p::Frame> exchange_frames(const Request& request, std::uint16_t sequence) {
    last_request_ = p::encode_request_frame(sequence, request);
    return feed(last_request_);
  }

  std::vector<p::Frame> feed(const std::vector<std::uint8_t>& bytes) {
    last_reply_ = board_.handle_bytes(bytes);
    std::vector<p::Frame> frames;
    for (auto& event : decoder_.feed(last_reply_)) {
      if (auto* f = std::get_if<p::Frame>(&event)) frames.push_back(std::move(*f));
    }
    return frames;
  }

  // Sends a request with a fresh sequence number and expects exactly one reply frame. Like a
  // host that has identified, it fills a mutating request's expected_boot_id with the board's
  // boot id when the test left it 0 (tests of the guard itself use exchange_frames).
  template <class Request>
  p::Frame call(Request request) {
    if constexpr (requires { request.expected_boot_id; }) {
      if (request.expected_boot_id == 0) request.expected_boot_id = board_.boot_id();
    }
    auto frames = exchange_frames(request, ++sequence_);
    REQUIRE(frames.size() == 1);
    CHECK(frames[0].header.sequence == sequence_);
    CHECK(frames[0].header.opcode == static_cast<std::uint8_t>(Request::kOpcode));
    return frames[0];
  }

  // call() and decode an ok body.
  template <class Body, class Request>
  Body ok(const Request& request) {
    const p::Frame frame = call(request);
    auto body = p::decode_response<Body>(frame.payload);
    INFO("status " << p::to_string(body.status) << ": " << body.error);
    REQUIRE(body);
    return *body.value;
  }

  template <class Request>
  p::ResponseStatus status(const Request& request) {
    const p::Frame frame = call(request);
    auto s = p::decode_response_status(frame.payload);
    REQUIRE(s);
    return *s.value;
  }

  std::uint32_t next_batch() { return ++batch_; }
  std::uint16_t sequence() const { return sequence_; }
  const std::vector<std::uint8_t>& last_request() const { return last_request_; }
  const std::vector<std::uint8_t>& last_reply() const { return last_reply_; }

  // Whole selection read through as many READ requests as it takes.
  std::vector<std::uint16_t> read_all(const p::Selection& selection) {
    std::vector<std::uint16_t> codes;
    while (codes.size() < selection.size()) {
      p::ReadRequest r{selection, static_cast<std::uint16_t>(codes.size()), 2048};
      auto body = ok<p::ReadResponse>(r);
      REQUIRE(body.offset == codes.size());
      codes.insert(codes.end(), body.codes.begin(), body.codes.end());
    }
    return codes;
  }

  std::vector<p::CellCounters> counters(const p::Selection& selection) {
    std::vector<p::CellCounters> out;
    while (out.size() < selection.size()) {
      p::ReadCountersRequest r{selection, static_cast<std::uint16_t>(out.size()), 400};
      auto body = ok<p::ReadCountersResponse>(r);
      out.insert(out.end(), body.counters.begin(), body.counters.end());
    }
    return out;
  }

 private:
  BoardFirmware& board_;
  p::StreamDecoder decoder_;
  std::uint16_t sequence_ = 100;
  std::uint32_t batch_ = 0;
  std::vector<std::uint8_t> last_request_;
  std::vector<std::uint8_t> last_reply_;
};

}  // namespace metaplast::sim::testing
