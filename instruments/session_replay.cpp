#include "instruments/session_replay.hpp"

#include <map>

#include "instruments/array_board.hpp"

namespace metaplast::instruments {

namespace p = metaplast::protocols;

namespace {

struct Exchange {
  p::Frame request;
  std::vector<std::uint8_t> request_bytes;
  std::optional<p::Frame> response;  // the last valid reply to it in the recording
};

// Payload with the boot id (bytes 1..4 of the status prefix) zeroed, for comparison.
std::vector<std::uint8_t> without_boot_id(std::vector<std::uint8_t> payload) {
  for (std::size_t i = 1; i < 5 && i < payload.size(); ++i) payload[i] = 0;
  return payload;
}

// Station limit checks of a decoded request; throws LimitError.
void check_request(const p::Frame& frame, const StationLimits& limits) {
  const auto payload = std::span<const std::uint8_t>(frame.payload);
  switch (static_cast<p::Opcode>(frame.header.opcode)) {
    case p::Opcode::kConfigure: {
      const auto d = p::decode<p::ConfigureRequest>(payload);
      if (!d) return;  // the board answers bad_length; nothing unsafe is sent
      const auto& c = d.value->config;
      BoardSettings s;
      s.read_voltage_v = c.read_voltage_mv / 1000.0;
      s.set_bl_voltage_v = c.set_bit_line_mv / 1000.0;
      s.set_pulse_width_ns = c.set_width_ns;
      s.reset_sl_voltage_v = c.reset_source_line_mv / 1000.0;
      s.reset_wl_voltage_v = c.reset_word_line_mv / 1000.0;
      s.reset_pulse_width_ns = c.reset_width_ns;
      s.form_bl_voltage_v = c.form_bit_line_mv / 1000.0;
      s.form_wl_voltage_v = c.form_word_line_mv / 1000.0;
      s.form_pulse_width_ns = c.form_width_ns;
      check_station_limits(s, limits);
      return;
    }
    case p::Opcode::kSetLevels: {
      const auto d = p::decode<p::SetLevelsRequest>(payload);
      if (!d) return;
      std::vector<double> gates_v, targets_us;
      for (const auto& l : d.value->levels) {
        gates_v.push_back(l.gate_mv / 1000.0);
        targets_us.push_back(l.target_conductance_us);
      }
      check_level_table(gates_v, targets_us, limits);
      return;
    }
    case p::Opcode::kSet: {
      const auto d = p::decode<p::SetRequest>(payload);
      if (d && d.value->mode == p::SetMode::kExplicit) {
        check_station_limits(
            PulseSpec{d.value->word_line_mv / 1000.0, d.value->bit_line_mv / 1000.0,
                      static_cast<double>(d.value->width_ns)},
            limits);
      }
      return;
    }
    case p::Opcode::kProgramVerify: {
      const auto d = p::decode<p::ProgramVerifyRequest>(payload);
      if (!d) return;
      for (const auto& e : d.value->entries) {
        if (e.max_attempts > limits.max_pulses_per_verify) {
          throw LimitError("max_attempts = " + std::to_string(e.max_attempts) +
                           " exceeds the station limit max_pulses_per_verify = " +
                           std::to_string(limits.max_pulses_per_verify));
        }
      }
      return;
    }
    default:
      return;
  }
}

}  // namespace

ReplayReport replay_session(const Recording& recording, BoardLink& link,
                            const StationLimits& limits) {
  std::vector<Exchange> exchanges;
  ReplayReport report;
  std::map<std::uint16_t, std::size_t> by_sequence;  // latest exchange per sequence number
  for (const auto& rf : recording.frames) {
    p::Frame frame;
    if (!p::decode_frame(rf.bytes, frame)) {
      if (rf.direction == FrameDirection::to_board) ++report.skipped;
      continue;
    }
    if (rf.direction == FrameDirection::to_board) {
      if (frame.header.version != p::kProtocolVersion) {
        ++report.skipped;
        continue;
      }
      const auto it = by_sequence.find(frame.header.sequence);
      if (it != by_sequence.end() && exchanges[it->second].request_bytes == rf.bytes &&
          it->second + 1 == exchanges.size()) {
        continue;  // a resend of the outstanding request
      }
      by_sequence[frame.header.sequence] = exchanges.size();
      exchanges.push_back({frame, rf.bytes, std::nullopt});
    } else {
      const auto it = by_sequence.find(frame.header.sequence);
      if (it == by_sequence.end()) continue;
      auto& ex = exchanges[it->second];
      if (ex.request.header.opcode == frame.header.opcode) ex.response = frame;
    }
  }
  report.requests = exchanges.size();
  std::uint32_t board_boot_id = 0;  // from the last reply of the board replayed against
  for (std::size_t i = 0; i < exchanges.size(); ++i) {
    const auto& ex = exchanges[i];
    const auto opcode = static_cast<p::Opcode>(ex.request.header.opcode);
    ReplayDifference diff;
    diff.request_index = i;
    diff.opcode = p::to_string(opcode);
    try {
      check_request(ex.request, limits);
    } catch (const LimitError& e) {
      diff.what = std::string("not sent, refused by the station limits: ") + e.what();
      report.differences.push_back(diff);
      continue;
    }
    // Mutating requests name the boot they were recorded on; send them for this board's boot
    // (docs/protocol.md section 5), as the recording host did for its own.
    auto payload = ex.request.payload;
    if (board_boot_id != 0) {
      if (auto stamped = p::with_expected_boot_id(opcode, payload, board_boot_id)) {
        payload = std::move(*stamped);
      }
    }
    const auto reply = link.transact(opcode, payload);
    board_boot_id = reply.status.boot_id;
    ++report.sent;
    if (!ex.response) {
      diff.what = "no response in the recording to compare with";
      diff.actual_hex = to_hex(reply.frame.payload);
      report.differences.push_back(diff);
      continue;
    }
    const bool same_flags = ex.response->header.flags == reply.frame.header.flags;
    if (same_flags &&
        without_boot_id(ex.response->payload) == without_boot_id(reply.frame.payload)) {
      ++report.matched;
      continue;
    }
    diff.what = same_flags ? "response differs" : "response flags differ";
    diff.expected_hex = to_hex(ex.response->payload);
    diff.actual_hex = to_hex(reply.frame.payload);
    report.differences.push_back(diff);
  }
  return report;
}

}  // namespace metaplast::instruments
