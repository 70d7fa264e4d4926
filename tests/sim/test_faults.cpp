#include <catch2/catch.hpp>
#include <filesystem>

#include "host_helper.hpp"

using namespace metaplast::sim;
namespace devices = metaplast::devices;
using namespace metaplast::sim::testing;

namespace {

// A host that retries the byte-identical frame until it gets an acceptable reply (right seq and
// opcode, not bad_crc), as docs/protocol.md section 5 prescribes. Returns the accepted payload.
class RetryingHost {
 public:
  explicit RetryingHost(BoardFirmware& board) : board_(board) {}

  template <class Request>
  std::vector<std::uint8_t> call(const Request& request) {
    const auto bytes = p::encode_request_frame(++sequence_, request);
    for (int attempt = 0; attempt < 200; ++attempt) {
      ++frames_sent_;
      for (auto& event : decoder_.feed(board_.handle_bytes(bytes))) {
        auto* frame = std::get_if<p::Frame>(&event);
        if (frame == nullptr || frame->header.sequence != sequence_ ||
            frame->header.opcode != static_cast<std::uint8_t>(Request::kOpcode)) {
          continue;
        }
        const auto status = p::decode_response_status(frame->payload);
        if (status && status.value->status == p::Status::kBadCrc) continue;
        return frame->payload;
      }
    }
    FAIL("no reply after 200 retries");
    return {};
  }
  int frames_sent() const { return frames_sent_; }

 private:
  BoardFirmware& board_;
  p::StreamDecoder decoder_;
  std::uint16_t sequence_ = 0;
  int frames_sent_ = 0;
};

// A program-and-verify session: configure, two PV chunks of one batch, a whole-row read,
// counters. Returns every accepted reply payload.
std::vector<std::vector<std::uint8_t>> session(BoardFirmware& board, RetryingHost& host) {
  std::vector<std::vector<std::uint8_t>> replies;
  replies.push_back(host.call(p::IdentifyRequest{}));
  const auto id = p::decode_response<p::IdentifyResponse>(replies.back());
  REQUIRE(id);
  for (std::uint32_t chunk = 0; chunk < 2; ++chunk) {
    p::ProgramVerifyRequest pv;
    pv.batch = {1, chunk * 100, 200};
    pv.expected_boot_id = id.value->boot_id;
    pv.options = p::program_verify_options::kTrace;
    for (std::uint16_t i = 0; i < 100; ++i) {
      const auto n = static_cast<std::uint16_t>(chunk * 100 + i);
      pv.entries.push_back({n, static_cast<std::uint8_t>((n * 5) % 9), 40, 400});
    }
    replies.push_back(host.call(pv));
  }
  replies.push_back(host.call(p::ReadRequest{p::Selection::row(0), 0, 128}));
  replies.push_back(host.call(p::ReadCountersRequest{p::Selection::block(0, 0, 2, 128), 0, 256}));
  replies.push_back(host.call(p::GetStatusRequest{}));
  (void)board;
  return replies;
}

}  // namespace

TEST_CASE("same seed and same command stream give identical bytes", "[faults][reproducibility]") {
  auto a = make_board(21, true, devices::Calibration::defaults());
  auto b = make_board(21, true, devices::Calibration::defaults());
  RetryingHost host_a(a), host_b(b);
  CHECK(session(a, host_a) == session(b, host_b));
  auto c = make_board(22, true, devices::Calibration::defaults());
  RetryingHost host_c(c);
  CHECK(session(c, host_c) != session(a, host_a));
}

TEST_CASE("dropped and corrupted frames change nothing on the chip (no double programming)",
          "[faults]") {
  auto clean = make_board(23, true, devices::Calibration::defaults());
  FirmwareOptions faulty_options;
  faulty_options.faults.drop_rate = 0.15;
  faulty_options.faults.corrupt_rate = 0.3;
  faulty_options.faults.seed = 99;
  auto faulty = make_board(23, true, devices::Calibration::defaults(), faulty_options);
  RetryingHost clean_host(clean), faulty_host(faulty);
  const auto clean_replies = session(clean, clean_host);
  const auto faulty_replies = session(faulty, faulty_host);
  CHECK(faulty_host.frames_sent() > clean_host.frames_sent());
  CHECK(faulty.stats().cached_replies > 0);
  CHECK(faulty.stats().crc_errors > 0);
  CHECK(faulty_replies == clean_replies);
  for (int cell = 0; cell < 256; ++cell) {
    CHECK(faulty.chip().cell(cell).set_pulses == clean.chip().cell(cell).set_pulses);
    CHECK(faulty.chip().cell(cell).reset_pulses == clean.chip().cell(cell).reset_pulses);
    CHECK(faulty.chip().true_conductance_us(cell) == clean.chip().true_conductance_us(cell));
  }
}

TEST_CASE("a reboot mid-batch: new boot id, batch forgotten, cells and counters kept",
          "[faults][reboot]") {
  FirmwareOptions options;
  options.faults.reboot_at_frames = {3};
  auto board = make_board(24, true, quiet_calibration(), options);
  TestHost host(board);
  const auto boot_before = host.ok<p::IdentifyResponse>(p::IdentifyRequest{}).boot_id;
  const auto cells = p::Selection::block(0, 0, 1, 10);
  const auto before = host.counters(cells);  // frame 2
  p::SetRequest set;                         // frame 3: half executed, then reset
  set.batch = {5, 0, 10};
  set.selection = cells;
  set.level = 8;
  set.expected_boot_id = boot_before;
  CHECK(host.exchange_frames(set, 500).empty());
  CHECK(board.boot_id() != boot_before);
  CHECK(board.stats().reboots == 1);

  // The host learns the truth by reading back, never by guessing.
  const auto status = host.ok<p::BatchStatusResponse>(p::BatchStatusRequest{5});
  CHECK(status.state == p::BatchState::kUnknown);
  const auto after = host.counters(cells);
  int pulsed = 0;
  for (std::size_t i = 0; i < after.size(); ++i) {
    const auto delta = after[i].set_pulses - before[i].set_pulses;
    CHECK(delta <= 1);
    pulsed += static_cast<int>(delta);
    CHECK((board.chip().cell(static_cast<int>(i)).state == CellState::hcs) == (delta == 1));
  }
  CHECK(pulsed == 5);
  // A later chunk of the forgotten batch, even written for the new boot, is refused.
  set.batch = {5, 5, 10};
  set.selection = p::Selection::block(0, 5, 1, 5);
  set.expected_boot_id = board.boot_id();
  CHECK(host.status(set).status == p::Status::kBatchOutOfOrder);
  // Every response now carries the new boot id.
  CHECK(host.status(p::GetStatusRequest{}).boot_id == board.boot_id());
}

TEST_CASE("a resend that outlives a reboot is refused with boot_id_mismatch, never re-executed",
          "[faults][reboot]") {
  FirmwareOptions options;
  options.faults.reboot_at_frames = {3};
  auto board = make_board(27, true, quiet_calibration(), options);
  TestHost host(board);
  const auto boot_before = host.ok<p::IdentifyResponse>(p::IdentifyRequest{}).boot_id;
  const auto cells = p::Selection::block(0, 0, 1, 10);
  const auto before = host.counters(cells);  // frame 2
  p::SetRequest set;                         // frame 3: first half executed, then the reset
  set.batch = {5, 0, 10};
  set.selection = cells;
  set.level = 8;
  set.expected_boot_id = boot_before;
  CHECK(host.exchange_frames(set, 500).empty());
  REQUIRE(board.boot_id() != boot_before);
  const auto resend = host.last_request();
  std::vector<std::uint64_t> at_reset;
  for (int cell = 0; cell < 10; ++cell) at_reset.push_back(board.chip().cell(cell).set_pulses);
  const auto time_at_reset = board.device_time_ns();
  const auto executed_at_reset = board.stats().executed;

  // The host timed out and resends the byte-identical frame (same seq). The new boot has no
  // reply cache and no batch table, and the chunk has offset 0: only the boot id stops it.
  for (int attempt = 0; attempt < 2; ++attempt) {
    const auto replies = host.feed(resend);
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].header.sequence == 500);
    CHECK((replies[0].header.flags & p::frame_flags::kError) != 0);
    const auto status = p::decode_response_status(replies[0].payload);
    REQUIRE(status);
    CHECK(status.value->status == p::Status::kBootIdMismatch);
    CHECK(status.value->boot_id == board.boot_id());  // how the host learns of the reset
    CHECK(status.value->error_detail == boot_before);
  }
  CHECK(board.stats().cached_replies == 0);  // refused afresh each time, never cached
  CHECK(board.stats().executed == executed_at_reset);
  CHECK(board.device_time_ns() == time_at_reset);
  // Exactly the first boot's pulses: one SET on each of the first 5 cells, none twice.
  const auto after = host.counters(cells);
  for (int cell = 0; cell < 10; ++cell) {
    INFO("cell " << cell);
    CHECK(after[cell].set_pulses == at_reset[cell]);
    CHECK(after[cell].set_pulses - before[cell].set_pulses == (cell < 5 ? 1u : 0u));
  }
  CHECK(host.ok<p::BatchStatusResponse>(p::BatchStatusRequest{5}).state == p::BatchState::kUnknown);
  // 0 is not a way around the check: boot ids are never 0.
  set.expected_boot_id = 0;
  const auto zero = host.exchange_frames(set, 600);
  REQUIRE(zero.size() == 1);
  CHECK(p::decode_response_status(zero[0].payload).value->status == p::Status::kBootIdMismatch);
  CHECK(host.counters(cells) == after);
  // Written for the new boot (after the host re-identified), the remaining work runs.
  set.batch = {6, 0, 5};
  set.selection = p::Selection::block(0, 5, 1, 5);
  set.expected_boot_id = board.boot_id();
  CHECK(host.ok<p::PulseResponse>(set).cells_done == 5);
  const auto done = host.counters(cells);
  for (int cell = 0; cell < 10; ++cell) {
    CHECK(done[cell].set_pulses - before[cell].set_pulses == 1u);
  }
}

TEST_CASE("power cycles persist through the state file; boot id changes", "[faults][state]") {
  const auto path = std::filesystem::temp_directory_path() /
                    ("metaplast_sim_fw_" + std::to_string(::getpid()) + ".state");
  FirmwareOptions options;
  options.state_file = path;
  std::uint32_t first_boot = 0;
  std::vector<p::CellCounters> counters_before;
  {
    auto board = make_board(25, true, quiet_calibration(), options);
    TestHost host(board);
    first_boot = board.boot_id();
    p::ResetRequest reset{{1, 0, 8}, p::Selection::block(3, 0, 1, 8)};
    host.ok<p::PulseResponse>(reset);  // completed batch: saved
    counters_before = host.counters(p::Selection::block(3, 0, 1, 8));
  }
  Chip chip = Chip::load(path);
  BoardFirmware restarted(std::move(chip), options);
  TestHost host(restarted);
  CHECK(restarted.boot_id() != first_boot);
  CHECK(host.counters(p::Selection::block(3, 0, 1, 8)) == counters_before);
  std::filesystem::remove(path);
}

TEST_CASE("a dead link answers nothing", "[faults]") {
  FirmwareOptions options;
  options.faults.dead_after_frames = 2;
  auto board = make_board(26, true, quiet_calibration(), options);
  TestHost host(board);
  host.ok<p::GetStatusResponse>(p::GetStatusRequest{});
  host.ok<p::GetStatusResponse>(p::GetStatusRequest{});
  CHECK(host.exchange_frames(p::GetStatusRequest{}, 1000).empty());
  CHECK(board.link_dead());
  board.set_link_dead(false);
  CHECK(host.exchange_frames(p::GetStatusRequest{}, 1001).size() == 1);
}
