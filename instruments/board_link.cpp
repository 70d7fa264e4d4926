#include "instruments/board_link.hpp"

#include <spdlog/spdlog.h>

#include <random>
#include <thread>

#include "drivers/transport.hpp"
#include "drivers/transport_factory.hpp"

namespace metaplast::instruments {

namespace p = metaplast::protocols;

BoardLink::BoardLink(std::string address, RetryPolicy policy)
    : address_(std::move(address)), policy_(policy) {
  // A fresh session starts at a random sequence number, so that it does not collide with the
  // board's cached reply to a previous session's request (that would be answered SEQUENCE_REUSED).
  std::random_device rd;
  next_sequence_ = static_cast<std::uint16_t>(rd());
}

BoardLink::~BoardLink() { disconnect(); }

bool BoardLink::connected() const { return transport_ && transport_->is_open(); }

void BoardLink::disconnect() noexcept {
  if (transport_) {
    transport_->close();
    transport_.reset();
  }
  decoder_.reset();
  pending_.clear();
  pending_pos_ = 0;
}

void BoardLink::connect() {
  disconnect();
  std::string last;
  for (int attempt = 0; attempt <= policy_.max_reconnects; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(policy_.reconnect_backoff);
    try {
      transport_ = drivers::make_transport(address_);
      return;
    } catch (const std::invalid_argument&) {
      throw;  // malformed address: user error, no retry
    } catch (const std::exception& e) {
      last = e.what();
    }
  }
  throw LinkError("cannot open the board at " + address_ + " after " +
                  std::to_string(policy_.max_reconnects + 1) + " tries: " + last);
}

std::uint64_t BoardLink::take_reconnect_count() {
  const auto n = reconnects_unseen_;
  reconnects_unseen_ = 0;
  return n;
}

void BoardLink::reconnect(std::string& problem) {
  disconnect();
  std::this_thread::sleep_for(policy_.reconnect_backoff);
  try {
    transport_ = drivers::make_transport(address_);
    ++stats_.reconnects;
    ++reconnects_unseen_;
    spdlog::warn("board link {}: reconnected after: {}", address_, problem);
  } catch (const std::exception& e) {
    problem += std::string("; reconnect failed: ") + e.what();
  }
}

bool BoardLink::write_frame(std::span<const std::uint8_t> frame, std::string& problem) {
  if (!connected()) {
    problem = "link closed";
    return false;
  }
  const auto r = transport_->write(frame, drivers::deadline_after(policy_.reply_timeout));
  stats_.bytes_written += r.bytes;
  if (!r.ok()) {
    problem = std::string("write ") + drivers::to_string(r.status) +
              (r.message.empty() ? "" : ": " + r.message);
    return false;
  }
  ++stats_.frames_sent;
  if (recorder_) recorder_->record(FrameDirection::to_board, frame);
  return true;
}

BoardLink::WaitOutcome BoardLink::wait_reply(std::uint16_t sequence, std::uint8_t opcode,
                                             std::chrono::steady_clock::time_point deadline,
                                             LinkReply& reply, std::string& problem) {
  std::uint8_t buffer[8192];
  std::uint64_t discarded = 0;
  std::size_t bytes_after_deadline = 0;
  const auto timed_out = [&] {
    problem = "no reply within " + std::to_string(policy_.reply_timeout.count()) + " ms";
    if (discarded > 0) {
      problem += " (" + std::to_string(discarded) + " frames that were not the reply discarded)";
    }
    return WaitOutcome::timeout;
  };
  for (;;) {
    while (pending_pos_ < pending_.size()) {
      auto& event = pending_[pending_pos_++];
      if (auto* error = std::get_if<p::DecodeError>(&event)) {
        if (error->kind == p::DecodeErrorKind::kFrameCrcMismatch &&
            error->header.sequence == sequence &&
            (error->header.flags & p::frame_flags::kResponse)) {
          ++stats_.corrupt_replies;
          problem = "corrupted reply (CRC mismatch)";
          return WaitOutcome::resend_now;
        }
        continue;  // garbage between frames: the decoder has resynchronised
      }
      auto& frame = std::get<p::Frame>(event);
      ++stats_.frames_received;
      if (recorder_) {
        recorder_->record(FrameDirection::from_board, p::encode_frame(frame.header, frame.payload));
      }
      if (!(frame.header.flags & p::frame_flags::kResponse) || frame.header.sequence != sequence ||
          frame.header.opcode != opcode) {
        ++stats_.stale_replies_discarded;
        ++discarded;
        continue;
      }
      const auto status = p::decode_response_status(frame.payload);
      if (!status) {
        ++stats_.corrupt_replies;
        problem = "malformed reply: " + status.error;
        return WaitOutcome::resend_now;
      }
      reply.frame = std::move(frame);
      reply.status = *status.value;
      return WaitOutcome::reply;
    }
    pending_.clear();
    pending_pos_ = 0;
    // Checked on every turn, not only when the line is quiet: past the deadline read_some
    // returns only what has already arrived, and at most two frames of it are read. A reply
    // that arrived in pieces is still taken; a board that keeps sending frames that are not the
    // awaited reply (stale sequence numbers) cannot hold the host.
    const bool late = std::chrono::steady_clock::now() >= deadline;
    if (late && bytes_after_deadline > 2 * p::kMaxFrameBytes) return timed_out();
    if (!connected()) {
      problem = "link closed";
      return WaitOutcome::closed;
    }
    const auto r = transport_->read_some(buffer, deadline);
    if (r.bytes > 0) {
      if (late) bytes_after_deadline += r.bytes;
      stats_.bytes_read += r.bytes;
      pending_ = decoder_.feed(std::span<const std::uint8_t>(buffer, r.bytes));
      continue;
    }
    if (r.status == drivers::IoStatus::timeout) return timed_out();
    if (r.status == drivers::IoStatus::closed) {
      problem = "link dropped" + (r.message.empty() ? std::string() : ": " + r.message);
      return WaitOutcome::closed;
    }
    if (r.status == drivers::IoStatus::error) {
      problem = "read error: " + r.message;
      if (std::chrono::steady_clock::now() >= deadline) return WaitOutcome::timeout;
    }
  }
}

LinkReply BoardLink::transact(p::Opcode opcode, std::span<const std::uint8_t> payload,
                              std::chrono::milliseconds execution_time) {
  return transact_with_sequence(take_sequence(), opcode, payload, execution_time);
}

LinkReply BoardLink::transact_with_sequence(std::uint16_t sequence, p::Opcode opcode,
                                            std::span<const std::uint8_t> payload,
                                            std::chrono::milliseconds execution_time) {
  p::FrameHeader header;
  header.opcode = static_cast<std::uint8_t>(opcode);
  header.sequence = sequence;
  auto frame = p::encode_frame(header, payload);
  std::string problem;
  int resends = 0;
  int reconnects = 0;
  bool fresh_sequence = true;  // nothing sent with this sequence number yet
  bool renumbered = false;     // the board's one cached reply can collide only once
  for (;;) {
    if (!connected()) {
      if (reconnects >= policy_.max_reconnects) break;
      ++reconnects;
      reconnect(problem);
      continue;
    }
    if (write_frame(frame, problem)) {
      LinkReply reply;
      const auto outcome =
          wait_reply(sequence, header.opcode,
                     std::chrono::steady_clock::now() + policy_.reply_timeout + execution_time,
                     reply, problem);
      if (outcome == WaitOutcome::reply) {
        const auto status = reply.status.status;
        if (status == p::Status::kSequenceReused && fresh_sequence && !renumbered) {
          // The board's cache holds another request under this number (a previous session):
          // move to a new number; nothing was executed.
          header.sequence = sequence = take_sequence();
          frame = p::encode_frame(header, payload);
          renumbered = true;
          continue;
        }
        if (status == p::Status::kBadCrc) {
          ++stats_.bad_crc_nacks;
          problem = "board answered BAD_CRC (request corrupted on the way)";
        } else if (status == p::Status::kBusy) {
          problem = reply.status.error_detail == p::busy_detail::kServingAnotherHost
                        ? "board busy: it is serving another host connection"
                        : "board busy";
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        } else {
          return reply;
        }
      } else if (outcome == WaitOutcome::closed) {
        continue;  // reconnect on the next turn
      }
      fresh_sequence = false;
    } else if (!connected()) {
      continue;
    }
    if (resends >= policy_.max_resends) break;
    ++resends;
    ++stats_.resends;
    spdlog::debug("board link {}: resending {} seq {} ({})", address_, p::to_string(opcode),
                  sequence, problem);
  }
  throw LinkError("no valid reply to " + std::string(p::to_string(opcode)) + " (sequence " +
                  std::to_string(sequence) + ") from " + address_ + " after " +
                  std::to_string(resends) + " resends and " + std::to_string(reconnects) +
                  " reconnects; last problem: " + problem +
                  (problem.starts_with("board busy")
                       ? ". Try again when the board is free (close the other host, if any)."
                       : ". Check the cable/connection and that the board is powered."));
}

std::optional<LinkReply> BoardLink::send_raw_and_wait(std::span<const std::uint8_t> bytes,
                                                      std::uint16_t sequence,
                                                      std::chrono::milliseconds timeout) {
  std::string problem;
  if (!connected()) throw LinkError("link to " + address_ + " is not open");
  const auto r = transport_->write(bytes, drivers::deadline_after(timeout));
  stats_.bytes_written += r.bytes;
  if (recorder_) recorder_->record(FrameDirection::to_board, bytes);
  if (!r.ok()) return std::nullopt;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Accept any opcode: the check wants to see what the board answers to this sequence number.
  std::uint8_t buffer[8192];
  for (;;) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;  // even if bytes flow
    while (pending_pos_ < pending_.size()) {
      auto& event = pending_[pending_pos_++];
      auto* frame = std::get_if<p::Frame>(&event);
      if (!frame) continue;
      ++stats_.frames_received;
      if (recorder_) {
        recorder_->record(FrameDirection::from_board,
                          p::encode_frame(frame->header, frame->payload));
      }
      if (!(frame->header.flags & p::frame_flags::kResponse) ||
          frame->header.sequence != sequence) {
        continue;
      }
      LinkReply reply;
      const auto status = p::decode_response_status(frame->payload);
      if (!status) continue;
      reply.frame = std::move(*frame);
      reply.status = *status.value;
      return reply;
    }
    pending_.clear();
    pending_pos_ = 0;
    const auto rr = transport_->read_some(buffer, deadline);
    if (rr.bytes > 0) {
      stats_.bytes_read += rr.bytes;
      pending_ = decoder_.feed(std::span<const std::uint8_t>(buffer, rr.bytes));
      continue;
    }
    if (rr.status != drivers::IoStatus::error) return std::nullopt;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
  }
}

}  // namespace metaplast::instruments
