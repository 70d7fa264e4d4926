// The host end of the board protocol: one request/response exchange at a time over a
// drivers::Transport, with sequence numbers, the retry policy and the session recorder.
//
// Retry rules (docs/protocol.md): a request that times out or is answered with BAD_CRC, or whose
// reply arrives corrupted, is resent byte for byte with the SAME sequence number; the board
// answers a repeated sequence number from its reply cache and never executes it twice (across a
// board reset too: FORM/SET/RESET/PROGRAM_VERIFY carry the boot id they were written for, and a
// new boot refuses them with BOOT_ID_MISMATCH; the board layer reports that as a reboot). Replies
// whose sequence number or opcode is not the one awaited (stale answers to an earlier resend,
// duplicates) are discarded. A dropped link is reopened with make_transport(address) (bounded by
// max_reconnects) and the pending request resent. When all of that fails, LinkError: no call
// blocks longer than about (max_resends + 1) * (max_reconnects + 1) * reply_timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "instruments/frame_recorder.hpp"
#include "protocols/board_messages.hpp"
#include "protocols/frame.hpp"

namespace metaplast::drivers {
class Transport;
}

namespace metaplast::instruments {

// Retry / reconnect policy of the link. Bounds the time any call can take.
struct RetryPolicy {
  std::chrono::milliseconds reply_timeout{300};  // per attempt, for one reply frame
  int max_resends = 8;     // same sequence number, on timeout / CRC error / BUSY
  int max_reconnects = 2;  // make_transport(address) again on a dropped link
  std::chrono::milliseconds reconnect_backoff{50};
};

struct LinkStats {
  std::uint64_t frames_sent = 0, frames_received = 0, bytes_written = 0, bytes_read = 0;
  std::uint64_t resends = 0, reconnects = 0, stale_replies_discarded = 0, corrupt_replies = 0;
  std::uint64_t bad_crc_nacks = 0;
};

class BoardError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The board answered with a non-OK status (its own limits, bad argument, unknown opcode...).
class BoardStatusError : public BoardError {
 public:
  BoardStatusError(const std::string& what, protocols::Status status, std::uint32_t detail)
      : BoardError(what), status_(status), detail_(detail) {}
  protocols::Status status() const { return status_; }
  std::uint32_t detail() const { return detail_; }

 private:
  protocols::Status status_;
  std::uint32_t detail_;
};

// No valid reply after every resend and reconnect of the retry policy.
class LinkError : public BoardError {
 public:
  using BoardError::BoardError;
};

struct LinkReply {
  protocols::Frame frame;            // header and payload as received
  protocols::ResponseStatus status;  // the payload's status prefix
  bool more_fragments() const {
    return (frame.header.flags & protocols::frame_flags::kMoreFragments) != 0;
  }
  bool ok() const { return status.status == protocols::Status::kOk; }
};

class BoardLink {
 public:
  BoardLink(std::string address, RetryPolicy policy);
  ~BoardLink();
  BoardLink(const BoardLink&) = delete;
  BoardLink& operator=(const BoardLink&) = delete;

  // Opens the transport. Throws drivers::AddressError (std::invalid_argument) for a malformed
  // address at once; LinkError when it cannot be opened within max_reconnects + 1 tries.
  void connect();
  void disconnect() noexcept;
  bool connected() const;
  const std::string& address() const { return address_; }

  void set_recorder(std::shared_ptr<FrameRecorder> recorder) { recorder_ = std::move(recorder); }

  // One exchange under the retry policy, with the next sequence number. Returns the reply
  // whatever its status (callers turn non-OK into BoardStatusError). Throws LinkError.
  // `execution_time` is added to the reply timeout: the board sends nothing while it executes.
  LinkReply transact(protocols::Opcode opcode, std::span<const std::uint8_t> payload,
                     std::chrono::milliseconds execution_time = {});
  template <class Request>
  LinkReply call(const Request& request, std::chrono::milliseconds execution_time = {}) {
    const auto payload = protocols::encode(request);
    return transact(Request::kOpcode, payload, execution_time);
  }
  // Same, with a chosen sequence number (conformance checks: a repeated sequence number).
  LinkReply transact_with_sequence(std::uint16_t sequence, protocols::Opcode opcode,
                                   std::span<const std::uint8_t> payload,
                                   std::chrono::milliseconds execution_time = {});

  // Conformance checks only: writes `bytes` as they are (e.g. a frame with a wrong CRC) and
  // waits once, without retries, for a response frame with `sequence`. nullopt on timeout.
  std::optional<LinkReply> send_raw_and_wait(std::span<const std::uint8_t> bytes,
                                             std::uint16_t sequence,
                                             std::chrono::milliseconds timeout);

  // Sequence number the next transact() will use.
  std::uint16_t peek_sequence() const { return next_sequence_; }
  std::uint16_t take_sequence() { return next_sequence_++; }

  // Reconnects since the last call (the board layer re-identifies after one).
  std::uint64_t take_reconnect_count();

  const LinkStats& stats() const { return stats_; }
  const RetryPolicy& policy() const { return policy_; }
  drivers::Transport* transport() { return transport_.get(); }

 private:
  enum class WaitOutcome { reply, resend_now, timeout, closed };
  WaitOutcome wait_reply(std::uint16_t sequence, std::uint8_t opcode,
                         std::chrono::steady_clock::time_point deadline, LinkReply& reply,
                         std::string& problem);
  bool write_frame(std::span<const std::uint8_t> frame, std::string& problem);
  void reconnect(std::string& problem);

  std::string address_;
  RetryPolicy policy_;
  std::unique_ptr<drivers::Transport> transport_;
  protocols::StreamDecoder decoder_;
  std::vector<protocols::DecodeEvent> pending_;
  std::size_t pending_pos_ = 0;
  std::shared_ptr<FrameRecorder> recorder_;
  std::uint16_t next_sequence_ = 1;
  std::uint64_t reconnects_unseen_ = 0;
  LinkStats stats_;
};

}  // namespace metaplast::instruments
