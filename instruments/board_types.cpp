// Out-of-line members of the value types of instruments/board_types.hpp.
#include "instruments/board_types.hpp"

#include <algorithm>

#include "common/enum_names.hpp"
#include "protocols/board_messages.hpp"

namespace metaplast::instruments {

namespace p = metaplast::protocols;

namespace {

constexpr auto kBoardStateNames = common::enum_table<BoardState>({
    {BoardState::closed, "closed"},
    {BoardState::connected, "connected"},
    {BoardState::configured, "configured"},
    {BoardState::active, "active"},
    {BoardState::safe, "safe"},
});

constexpr auto kBatchStatusNames = common::enum_table<BatchStatus>({
    {BatchStatus::done, "done"},
    {BatchStatus::in_progress, "in progress"},
    {BatchStatus::unknown, "unknown"},
    {BatchStatus::not_started, "not started"},
});

}  // namespace

const char* to_string(BoardState state) { return common::enum_name(kBoardStateNames, state); }

const char* to_string(BatchStatus status) { return common::enum_name(kBatchStatusNames, status); }

bool BoardInfo::has_program_verify() const { return has(p::capability::kProgramVerify); }

std::size_t ProgramReport::passed() const {
  return static_cast<std::size_t>(
      std::count_if(cells.begin(), cells.end(), [](const auto& c) { return c.passed; }));
}

std::size_t program_verify_entries_per_request(std::size_t max_payload_bytes) {
  return std::min(p::kMaxProgramVerifyEntries, (max_payload_bytes - 19) / 6);
}

std::size_t read_cells_per_request(std::size_t max_payload_bytes) {
  return std::min(p::kMaxReadCodesPerResponse, (max_payload_bytes - 16) / 2);
}

std::size_t counters_per_request(std::size_t max_payload_bytes) {
  return std::min(p::kMaxCountersPerResponse, (max_payload_bytes - 16) / 10);
}

}  // namespace metaplast::instruments
