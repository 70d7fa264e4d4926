// In-process pipes: two connected Transports backed by thread-safe byte queues, for running the
// simulated board on its own thread in the host process. Same promises as any Transport:
// deadlines, full duplex across two threads, and closing one end makes the other end's reads
// return the bytes still queued and then status closed (writes to it return closed at once).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "drivers/transport.hpp"

namespace metaplast::drivers {

struct PipePair {
  std::unique_ptr<Transport> first;   // e.g. the host's end
  std::unique_ptr<Transport> second;  // e.g. the simulated board's end
};

// `name` labels the ends' addresses ("pipe:<name>/0", "pipe:<name>/1"). Each direction buffers
// up to `capacity_bytes` (writes wait for room, bounded by their deadline); must be >= 1.
PipePair make_pipe_pair(const std::string& name = "pipe", std::size_t capacity_bytes = 1 << 20);

}  // namespace metaplast::drivers
