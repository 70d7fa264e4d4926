#include "tests/protocols/fuzz_entry.hpp"

#include <cstdio>
#include <cstdlib>
#include <span>
#include <stdexcept>
#include <variant>
#include <vector>

#include "protocols/board_messages.hpp"
#include "protocols/frame.hpp"

namespace metaplast::protocols::fuzz {
namespace {

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
  std::abort();
}

using Bytes = std::span<const std::uint8_t>;

// Whatever a decoder accepts must re-encode to exactly the same bytes.
template <class Request>
void check_request(Bytes payload) {
  const auto d = decode<Request>(payload);
  if (!d) {
    if (d.status == Status::kOk) violated("request decode failed with status ok");
    return;
  }
  std::vector<std::uint8_t> again;
  try {
    again = encode(*d.value);
  } catch (const std::invalid_argument&) {
    violated("encoder refused a value its decoder accepted");
  }
  if (!std::equal(again.begin(), again.end(), payload.begin(), payload.end())) {
    violated("request round trip changed the bytes");
  }
}

template <class Body>
void check_response(Bytes payload) {
  const auto d = decode_response<Body>(payload);
  const auto st = decode_response_status(payload);
  if (!d) {
    if (d.status == Status::kOk) violated("response decode failed with status ok");
    return;
  }
  if (!st || st.value->status != Status::kOk) violated("ok body with a non-ok prefix");
  std::vector<std::uint8_t> again;
  try {
    again = encode_response(*st.value, *d.value);
  } catch (const std::invalid_argument&) {
    violated("response encoder refused a value its decoder accepted");
  }
  if (!std::equal(again.begin(), again.end(), payload.begin(), payload.end())) {
    violated("response round trip changed the bytes");
  }
}

void check_error_response(Bytes payload) {
  const auto st = decode_response_status(payload);
  if (!st || st.value->status == Status::kOk) return;
  const auto again = encode_error_response(*st.value);
  if (!std::equal(again.begin(), again.end(), payload.begin(), payload.end())) {
    violated("error response round trip changed the bytes");
  }
}

void check_all_decoders(Bytes p) {
  check_request<IdentifyRequest>(p);
  check_request<GetStatusRequest>(p);
  check_request<ConfigureRequest>(p);
  check_request<GetConfigurationRequest>(p);
  check_request<SetLevelsRequest>(p);
  check_request<FormRequest>(p);
  check_request<SetRequest>(p);
  check_request<ResetRequest>(p);
  check_request<ReadRequest>(p);
  check_request<ProgramVerifyRequest>(p);
  check_request<ReadCountersRequest>(p);
  check_request<BatchStatusRequest>(p);
  check_request<SafeStateRequest>(p);
  check_request<WatchdogArmRequest>(p);
  check_request<WatchdogKickRequest>(p);
  check_response<IdentifyResponse>(p);
  check_response<GetStatusResponse>(p);
  check_response<Configuration>(p);
  check_response<LevelTable>(p);
  check_response<PulseResponse>(p);
  check_response<ReadResponse>(p);
  check_response<ProgramVerifyResponse>(p);
  check_response<ReadCountersResponse>(p);
  check_response<BatchStatusResponse>(p);
  check_response<EmptyBody>(p);
  check_error_response(p);
}

}  // namespace

int run_one_input(const std::uint8_t* data, std::size_t size) {
  const Bytes input(data, size);

  // 1. The raw input as a payload, through every message decoder.
  check_all_decoders(input);

  // 2. The input as a byte stream, fed in chunks whose sizes come from the first byte, and
  //    again in one piece: both must give the same frames.
  const std::size_t chunk = size == 0 ? 1 : 1 + data[0] % 97;
  StreamDecoder chunked;
  StreamDecoder whole;
  std::vector<DecodeEvent> events_chunked;
  for (std::size_t i = 0; i < size; i += chunk) {
    auto ev = chunked.feed(input.subspan(i, std::min(chunk, size - i)));
    for (auto& e : ev) events_chunked.push_back(std::move(e));
    if (chunked.buffered_bytes() > 2 * kMaxFrameBytes) violated("decoder buffer unbounded");
  }
  const auto events_whole = whole.feed(input);
  std::vector<const Frame*> frames_chunked, frames_whole;
  for (const auto& e : events_chunked)
    if (auto* f = std::get_if<Frame>(&e)) frames_chunked.push_back(f);
  for (const auto& e : events_whole)
    if (auto* f = std::get_if<Frame>(&e)) frames_whole.push_back(f);
  if (frames_chunked.size() != frames_whole.size()) violated("chunking changed the frames");
  std::size_t frame_bytes = 0;
  for (std::size_t i = 0; i < frames_whole.size(); ++i) {
    const Frame& f = *frames_whole[i];
    if (f.payload != frames_chunked[i]->payload ||
        f.header.sequence != frames_chunked[i]->header.sequence) {
      violated("chunking changed a frame");
    }
    // A decoded frame re-encodes to bytes that decode_frame accepts, and its payload goes
    // through every decoder.
    const auto bytes = encode_frame(f.header, f.payload);
    Frame back;
    if (!decode_frame(bytes, back) || back.payload != f.payload) violated("frame round trip");
    frame_bytes += bytes.size();
    check_all_decoders(f.payload);
  }
  const auto& s = whole.stats();
  if (frame_bytes + s.garbage_bytes + whole.buffered_bytes() != size && s.crc_errors == 0 &&
      s.oversize_errors == 0) {
    violated("decoder accounted for more bytes than it was fed");
  }
  return 0;
}

}  // namespace metaplast::protocols::fuzz
