// Private to the ArrayBoard implementation files (array_board.cpp, array_board_program.cpp):
// the parts of the class both need to see defined. Not part of the driver's contract; include
// instruments/array_board.hpp instead.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "instruments/array_board.hpp"
#include "protocols/board_messages.hpp"

namespace metaplast::instruments {

// Which pulse a chunked FORM/SET/RESET applies (ArrayBoard::apply_pulses).
struct ArrayBoard::Pulse {
  protocols::Opcode opcode = protocols::Opcode::kSet;
  Level level = 1;
  std::optional<PulseSpec> explicit_pulse;
  double width_ns = 0;
};

// One request, its reply decoded as Body (exchange() does the boot id and status checks).
template <class Body, class Request>
Body ArrayBoard::call(const Request& request, const char* operation,
                      std::chrono::milliseconds execution_time) {
  namespace p = metaplast::protocols;
  const auto payload = p::encode(request);
  const auto reply = exchange(Request::kOpcode, payload, execution_time, operation);
  auto decoded = p::decode_response<Body>(reply.frame.payload);
  if (!decoded) {
    throw BoardError("malformed " + std::string(p::to_string(Request::kOpcode)) + " reply from " +
                     address_ + ": " + decoded.error);
  }
  return std::move(*decoded.value);
}

}  // namespace metaplast::instruments
