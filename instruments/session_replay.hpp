// Replay of a recorded session (frame_recorder.hpp): every distinct request of the recording is
// decoded, passed through the station limit checks, sent again to a board (new sequence numbers,
// same bytes otherwise) and its response compared with the recorded one. Resends in the
// recording (same sequence number, same bytes) are sent once. Boot ids are not compared (a
// new power-up has a new one); everything else in the response is.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "instruments/board_link.hpp"
#include "instruments/frame_recorder.hpp"
#include "instruments/station_limits.hpp"

namespace metaplast::instruments {

struct ReplayDifference {
  std::size_t request_index = 0;  // among the distinct requests of the recording
  std::string opcode;
  std::string what;  // "response differs", "refused by the station limits: ...", ...
  std::string expected_hex, actual_hex;  // response payloads (boot id included)
};

struct ReplayReport {
  std::size_t requests = 0;  // distinct requests in the recording
  std::size_t sent = 0;
  std::size_t matched = 0;
  std::size_t skipped = 0;  // not a decodable request (e.g. a selftest's broken frame)
  std::vector<ReplayDifference> differences;
  bool ok() const { return differences.empty(); }
};

// Replays `recording` over `link` (connected). Throws std::runtime_error for a malformed
// recording, LinkError for a dead link.
ReplayReport replay_session(const Recording& recording, BoardLink& link,
                            const StationLimits& limits);

}  // namespace metaplast::instruments
