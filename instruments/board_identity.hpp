// Validation of a board's IDENTIFY answer at connect time: every limit the board advertises has a
// range stated in docs/protocol.md 4.1, and the host refuses a board outside it before it sizes a
// request or sends a setting from those numbers (a max_payload_bytes of 0 or 16, a read maximum
// of 65535 mV, a zero boot id ...).
#pragma once

#include <string>

#include "protocols/board_messages.hpp"

namespace metaplast::instruments {

// Throws BoardError (instruments/board_link.hpp) naming the board's address, the first field
// outside its range, the value received and the range allowed.
void check_identity(const protocols::IdentifyResponse& identity, const std::string& address);

}  // namespace metaplast::instruments
