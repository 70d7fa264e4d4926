// The wall-clock time as every record of the product writes it.
#pragma once

#include <string>

namespace metaplast::common {

// Now, in UTC, ISO 8601 to the second: "2026-12-05T20:51:18Z".
std::string utc_now_iso8601();

}  // namespace metaplast::common
