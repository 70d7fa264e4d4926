// The wall-clock time as every record of the product writes it.
#pragma once

#include <string>

namespace metaplast::common {

// Now, in UTC, ISO 8601 to the second: "2026-12-05T20:51:18Z".
std::string utc_now_iso8601();
// Now, in UTC, to the millisecond: "2026-12-05T20:51:18.042Z" (where the order of events in
// several processes matters: the start and end of a campaign's units).
std::string utc_now_iso8601_ms();

}  // namespace metaplast::common
