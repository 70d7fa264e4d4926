// Out-of-line members of the value types of instruments/board_types.hpp.
#include "instruments/board_types.hpp"

#include <algorithm>

#include "protocols/board_messages.hpp"

namespace metaplast::instruments {

namespace p = metaplast::protocols;

const char* to_string(BoardState state) {
  switch (state) {
    case BoardState::closed:
      return "closed";
    case BoardState::connected:
      return "connected";
    case BoardState::configured:
      return "configured";
    case BoardState::active:
      return "active";
    case BoardState::safe:
      return "safe";
  }
  return "?";
}

const char* to_string(BatchStatus status) {
  switch (status) {
    case BatchStatus::done:
      return "done";
    case BatchStatus::in_progress:
      return "in progress";
    case BatchStatus::unknown:
      return "unknown";
    case BatchStatus::not_started:
      return "not started";
  }
  return "?";
}

bool BoardInfo::has_program_verify() const { return has(p::capability::kProgramVerify); }

std::size_t ProgramReport::passed() const {
  return static_cast<std::size_t>(
      std::count_if(cells.begin(), cells.end(), [](const auto& c) { return c.passed; }));
}

}  // namespace metaplast::instruments
