#include <catch2/catch.hpp>
#include <cmath>
#include <map>

#include "host_helper.hpp"

using namespace metaplast::sim;
namespace devices = metaplast::devices;
using namespace metaplast::sim::testing;

namespace {

p::ProgramVerifyRequest pv_request(std::uint32_t batch, const std::vector<std::uint16_t>& cells,
                                   const std::vector<std::uint8_t>& levels,
                                   std::uint16_t tolerance_us_x100 = 400,
                                   std::uint8_t attempts = 60, bool trace = false) {
  p::ProgramVerifyRequest r;
  r.batch = {batch, 0, static_cast<std::uint32_t>(cells.size())};
  r.options = trace ? p::program_verify_options::kTrace : 0;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    r.entries.push_back({cells[i], levels[i], attempts, tolerance_us_x100});
  }
  return r;
}

double to_us(const p::IdentifyResponse& id, std::uint16_t code, std::uint16_t read_mv = 200) {
  const auto& range = id.tia_ranges[0];
  return (code - range.zero_code) * static_cast<double>(range.nanoamps_per_code) / read_mv;
}

}  // namespace

TEST_CASE("identify describes the board, its levels and limits", "[firmware]") {
  auto board = make_board(1);
  TestHost host(board);
  const auto id = host.ok<p::IdentifyResponse>(p::IdentifyRequest{});
  const devices::Calibration cal = quiet_calibration();
  CHECK(id.rows == 128);
  CHECK(id.cols == 128);
  CHECK(id.adc_bits == 14);
  CHECK(id.boot_id == board.boot_id());
  CHECK(id.boot_id != 0);
  REQUIRE(id.levels.size() == 9);
  CHECK(id.levels[0].icc_na == 0);
  CHECK(id.levels[0].target_conductance_us == Approx(cal.lcs.median_conductance_us));
  CHECK(id.levels[8].icc_na == 80'000);
  CHECK(id.levels[8].target_conductance_us == Approx(160.0));
  CHECK((id.capabilities & p::capability::kProgramVerify) != 0);
  CHECK(id.limits.max_attempts <= p::kMaxAttemptsLimit);
  CHECK(id.tia_ranges.size() == 3);
}

TEST_CASE("values outside the board's limits are refused with the field id", "[firmware]") {
  auto board = make_board(2);
  TestHost host(board);
  const auto before = host.ok<p::Configuration>(p::GetConfigurationRequest{});

  p::ConfigureRequest configure{before};
  configure.config.read_voltage_mv = 900;
  auto s = host.status(configure);
  CHECK(s.status == p::Status::kOutOfLimits);
  CHECK(s.error_detail == static_cast<std::uint32_t>(p::ConfigField::kReadVoltage));
  configure.config = before;
  configure.config.reset_width_ns = 5;
  s = host.status(configure);
  CHECK(s.status == p::Status::kOutOfLimits);
  CHECK(s.error_detail == static_cast<std::uint32_t>(p::ConfigField::kResetPulseWidth));
  configure.config = before;
  configure.config.tia_range = 7;
  CHECK(host.status(configure).status == p::Status::kBadArgument);
  // Refused whole: the previous configuration stays.
  CHECK(host.ok<p::Configuration>(p::GetConfigurationRequest{}) == before);

  p::SetRequest explicit_set;
  explicit_set.batch = {host.next_batch(), 0, 1};
  explicit_set.selection = p::Selection::cell(0, 0);
  explicit_set.mode = p::SetMode::kExplicit;
  explicit_set.word_line_mv = 1000;
  explicit_set.bit_line_mv = 9000;
  explicit_set.width_ns = 100;
  s = host.status(explicit_set);
  CHECK(s.status == p::Status::kOutOfLimits);
  CHECK(s.error_detail == static_cast<std::uint32_t>(p::ConfigField::kSetBitLineVoltage));

  p::SetRequest bad_level;
  bad_level.batch = {host.next_batch(), 0, 1};
  bad_level.selection = p::Selection::cell(0, 0);
  bad_level.level = 9;
  CHECK(host.status(bad_level).status == p::Status::kBadArgument);

  p::ResetRequest outside;
  outside.batch = {host.next_batch(), 0, 4};
  outside.selection = p::Selection::block(126, 126, 2, 3);
  CHECK(host.status(outside).status == p::Status::kBadCellAddress);
  outside.selection = p::Selection::list({1, 2, 16384, 3});
  s = host.status(outside);
  CHECK(s.status == p::Status::kBadCellAddress);
  CHECK(s.error_detail == 2);

  // Nothing refused touched a cell.
  const auto counters = host.counters(p::Selection::block(0, 0, 1, 4));
  for (const auto& c : counters) CHECK(c.set_pulses == 0);
}

TEST_CASE("SET on an unformed cell is refused; FORM forms it", "[firmware]") {
  auto board = make_board(3, /*formed=*/false);
  TestHost host(board);
  p::SetRequest set;
  set.batch = {host.next_batch(), 0, 2};
  set.selection = p::Selection::list({5, 6});
  set.level = 3;
  auto s = host.status(set);
  CHECK(s.status == p::Status::kNotFormed);
  CHECK(s.error_detail == 0);

  p::FormRequest form{{host.next_batch(), 0, 2}, p::Selection::list({5, 6})};
  CHECK(host.ok<p::PulseResponse>(form).cells_done == 2);
  const auto codes = host.read_all(p::Selection::list({5, 6}));
  const auto id = host.ok<p::IdentifyResponse>(p::IdentifyRequest{});
  for (auto code : codes)
    CHECK(to_us(id, code) > quiet_calibration().forming.success_conductance_us);
  // Forming twice applies no second pulse.
  p::FormRequest again{{host.next_batch(), 0, 1}, p::Selection::list({5})};
  host.ok<p::PulseResponse>(again);
  CHECK(host.counters(p::Selection::list({5}))[0].form_pulses == 1);
  set.batch = {host.next_batch(), 0, 2};
  CHECK(host.ok<p::PulseResponse>(set).cells_done == 2);
}

TEST_CASE("counters count one per SET or RESET pulse; reads count none", "[firmware]") {
  auto board = make_board(4);
  TestHost host(board);
  const auto block = p::Selection::block(10, 20, 2, 3);
  const auto before = host.counters(block);
  p::SetRequest set;
  set.batch = {host.next_batch(), 0, 6};
  set.selection = block;
  set.level = 5;
  host.ok<p::PulseResponse>(set);
  p::ResetRequest reset{{host.next_batch(), 0, 6}, block};
  host.ok<p::PulseResponse>(reset);
  host.ok<p::PulseResponse>(p::ResetRequest{{host.next_batch(), 0, 6}, block});
  host.read_all(block);
  const auto after = host.counters(block);
  for (std::size_t i = 0; i < after.size(); ++i) {
    CHECK(after[i].set_pulses == before[i].set_pulses + 1);
    CHECK(after[i].reset_pulses == before[i].reset_pulses + 2);
  }
}

TEST_CASE("a resent sequence number is answered from the cache, never executed twice",
          "[firmware][retry]") {
  auto board = make_board(5);
  TestHost host(board);
  p::SetRequest set;
  set.batch = {host.next_batch(), 0, 1};
  set.selection = p::Selection::cell(3, 5);
  set.level = 4;
  set.expected_boot_id = board.boot_id();
  const auto first = host.exchange_frames(set, 7);
  const auto first_bytes = host.last_reply();
  const auto request_bytes = host.last_request();
  REQUIRE(first.size() == 1);
  const auto counters = board.chip().cell(3 * 128 + 5).set_pulses;
  const auto time = board.device_time_ns();

  host.feed(request_bytes);  // the host's retry: byte-identical frame
  CHECK(host.last_reply() == first_bytes);
  CHECK(board.chip().cell(3 * 128 + 5).set_pulses == counters);
  CHECK(board.device_time_ns() == time);
  CHECK(board.stats().cached_replies == 1);

  // Same sequence number, different request: refused, not executed.
  set.level = 6;
  const auto reused = host.exchange_frames(set, 7);
  REQUIRE(reused.size() == 1);
  CHECK(p::decode_response_status(reused[0].payload).value->status == p::Status::kSequenceReused);
  CHECK(board.chip().cell(3 * 128 + 5).set_pulses == counters);
}

TEST_CASE("chunks of a batch must come in order; batch status reports progress",
          "[firmware][batch]") {
  auto board = make_board(6);
  TestHost host(board);
  const std::uint32_t id = host.next_batch();
  p::ResetRequest chunk{{id, 0, 4}, p::Selection::list({1, 2})};
  host.ok<p::PulseResponse>(chunk);
  auto status = host.ok<p::BatchStatusResponse>(p::BatchStatusRequest{id});
  CHECK(status.state == p::BatchState::kInProgress);
  CHECK(status.cells_done == 2);
  chunk.batch.batch_offset = 0;  // repeated chunk under a new sequence number
  auto s = host.status(chunk);
  CHECK(s.status == p::Status::kBatchOutOfOrder);
  CHECK(s.error_detail == 2);
  chunk.batch.batch_offset = 2;
  chunk.selection = p::Selection::list({3, 4});
  host.ok<p::PulseResponse>(chunk);
  status = host.ok<p::BatchStatusResponse>(p::BatchStatusRequest{id});
  CHECK(status.state == p::BatchState::kDone);
  CHECK(host.ok<p::BatchStatusResponse>(p::BatchStatusRequest{999}).state ==
        p::BatchState::kUnknown);
  chunk.batch = {0, 0, 2};
  CHECK(host.status(chunk).status == p::Status::kBadArgument);
}

TEST_CASE("batch_total is fixed by the first chunk: no growing, shrinking or extending",
          "[firmware][batch]") {
  auto board = make_board(16);
  TestHost host(board);
  const std::uint32_t id = host.next_batch();
  p::ResetRequest chunk{{id, 0, 4}, p::Selection::list({1, 2})};
  host.ok<p::PulseResponse>(chunk);
  const auto counters_before =
      host.ok<p::ReadCountersResponse>(p::ReadCountersRequest{p::Selection::list({3, 4}), 0, 2});
  // The next chunk at the right offset but with another total: refused, nothing pulsed.
  chunk.batch = {id, 2, 6};
  chunk.selection = p::Selection::list({3, 4});
  auto s = host.status(chunk);
  CHECK(s.status == p::Status::kBadArgument);
  CHECK(s.error_detail == 0);
  chunk.batch = {id, 2, 3};
  CHECK(host.status(chunk).status == p::Status::kBadArgument);
  CHECK(host.ok<p::ReadCountersResponse>(
            p::ReadCountersRequest{p::Selection::list({3, 4}), 0, 2}) == counters_before);
  // With the first chunk's total it completes; a finished batch cannot be extended.
  chunk.batch = {id, 2, 4};
  host.ok<p::PulseResponse>(chunk);
  CHECK(host.ok<p::BatchStatusResponse>(p::BatchStatusRequest{id}).state == p::BatchState::kDone);
  chunk.batch = {id, 4, 6};
  chunk.selection = p::Selection::list({5, 6});
  CHECK(host.status(chunk).status == p::Status::kBadArgument);
  chunk.batch = {id, 4, 4};
  CHECK(host.status(chunk).status == p::Status::kBadArgument);
  const auto status = host.ok<p::BatchStatusResponse>(p::BatchStatusRequest{id});
  CHECK(status.cells_done == 4);
  CHECK(status.cells_total == 4);
}

TEST_CASE("program-and-verify tolerance outside 0.01 .. 100 uS is refused, field tolerance",
          "[firmware]") {
  auto board = make_board(17);
  TestHost host(board);
  const auto counters_before =
      host.ok<p::ReadCountersResponse>(p::ReadCountersRequest{p::Selection::cell(0, 3), 0, 1});
  for (const std::uint16_t tolerance :
       {std::uint16_t{0}, static_cast<std::uint16_t>(p::kMaxToleranceUsX100 + 1),
        std::uint16_t{65535}}) {
    INFO("tolerance_us_x100 " << tolerance);
    const auto s = host.status(pv_request(host.next_batch(), {3}, {5}, tolerance));
    CHECK(s.status == p::Status::kBadArgument);
    CHECK(s.error_detail == static_cast<std::uint32_t>(p::ConfigField::kTolerance));
  }
  CHECK(host.ok<p::ReadCountersResponse>(p::ReadCountersRequest{p::Selection::cell(0, 3), 0, 1}) ==
        counters_before);
  for (const std::uint16_t tolerance : {p::kMinToleranceUsX100, p::kMaxToleranceUsX100}) {
    CHECK(host.status(pv_request(host.next_batch(), {3}, {5}, tolerance)).status == p::Status::kOk);
  }
}

TEST_CASE("a READ / READ_COUNTERS response never exceeds the advertised max_payload_bytes",
          "[firmware][read]") {
  auto board = make_board(18);
  TestHost host(board);
  const auto id = host.ok<p::IdentifyResponse>(p::IdentifyRequest{});
  CHECK(id.max_payload_bytes >= p::kMinAdvertisedPayloadBytes);
  const auto read = host.call(p::ReadRequest{p::Selection::array(), 0, 2048});
  CHECK(read.payload.size() <= id.max_payload_bytes);
  CHECK(p::decode_response<p::ReadResponse>(read.payload).value->codes.size() ==
        p::read_codes_per_response(id.max_payload_bytes));
  const auto counters = host.call(p::ReadCountersRequest{p::Selection::array(), 0, 400});
  CHECK(counters.payload.size() <= id.max_payload_bytes);
  CHECK(p::decode_response<p::ReadCountersResponse>(counters.payload).value->counters.size() ==
        p::counters_per_response(id.max_payload_bytes));
  // The board limit formula: the largest count whose response fits.
  for (const std::size_t max_payload : {512u, 1000u, 4160u}) {
    const auto codes = p::read_codes_per_response(max_payload);
    CHECK(5 + 5 + 2 * codes <= max_payload);
    CHECK((codes == p::kMaxReadCodesPerResponse || 5 + 5 + 2 * (codes + 1) > max_payload));
    const auto cells = p::counters_per_response(max_payload);
    CHECK(5 + 4 + 10 * cells <= max_payload);
    CHECK((cells == p::kMaxCountersPerResponse || 5 + 4 + 10 * (cells + 1) > max_payload));
  }
}

TEST_CASE("whole-array read: 8 frames of 2048 codes with MORE_FRAGMENTS", "[firmware][read]") {
  auto board = make_board(7);
  TestHost host(board);
  const auto array = p::Selection::array();
  for (std::uint16_t offset = 0; offset < 16384; offset += 2048) {
    const auto frame = host.call(p::ReadRequest{array, offset, 2048});
    const bool last = offset == 14336;
    CHECK(((frame.header.flags & p::frame_flags::kMoreFragments) != 0) == !last);
    const auto body = p::decode_response<p::ReadResponse>(frame.payload);
    REQUIRE(body);
    CHECK(body.value->codes.size() == 2048);
  }
  CHECK(host.status(p::ReadRequest{array, 16384 - 1, 10}).status == p::Status::kOk);
  const auto beyond = host.call(p::ReadRequest{p::Selection::row(0), 128, 10});
  CHECK(p::decode_response_status(beyond.payload).value->status == p::Status::kBadArgument);
}

TEST_CASE("program-and-verify brings cells into their bands; counters match attempts",
          "[firmware][program_verify]") {
  auto board = make_board(8);
  TestHost host(board);
  const auto id = host.ok<p::IdentifyResponse>(p::IdentifyRequest{});
  std::vector<std::uint16_t> cells;
  std::vector<std::uint8_t> levels;
  for (std::uint16_t i = 0; i < 300; ++i) {
    cells.push_back(static_cast<std::uint16_t>(i * 37 % 16384));
    levels.push_back(static_cast<std::uint8_t>(i % 9));
  }
  const auto selection = p::Selection::list(cells);
  const auto before = host.counters(selection);
  const auto result = host.ok<p::ProgramVerifyResponse>(
      pv_request(host.next_batch(), cells, levels, 400, 60, true));
  REQUIRE(result.results.size() == cells.size());
  const auto after = host.counters(selection);
  std::map<std::uint16_t, int> trace_pulses;
  for (const auto& t : result.trace) ++trace_pulses[t.entry];
  CHECK(result.has_trace);
  int passed = 0;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const auto& r = result.results[i];
    passed += r.passed;
    const double g = to_us(id, r.code);
    const double target = id.levels[levels[i]].target_conductance_us;
    if (r.passed) {
      if (levels[i] == 0) {
        CHECK(g <= target + 4.0 + 1e-9);
      } else {
        CHECK(std::abs(g - target) <= 4.0 + 1e-9);
      }
    }
    const auto pulses = (after[i].set_pulses - before[i].set_pulses) +
                        (after[i].reset_pulses - before[i].reset_pulses);
    CHECK(pulses == r.attempts);
    if (!result.trace_truncated) CHECK(trace_pulses[static_cast<std::uint16_t>(i)] == r.attempts);
  }
  CHECK(passed >= 295);
  // Without relaxation, a later read sees the programmed cells near their targets.
  const auto codes = host.read_all(selection);
  int near = 0;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const double target = id.levels[levels[i]].target_conductance_us;
    near += std::abs(to_us(id, codes[i]) - target) <= 4.0 + 0.03 * target + 0.5;
  }
  CHECK(near >= 290);
}

TEST_CASE("an already-in-band cell costs no pulse; a stuck cell fails after max attempts",
          "[firmware][program_verify]") {
  FirmwareOptions options;
  options.faults.stuck_cells = {42};
  auto board = make_board(9, true, quiet_calibration(), options);
  TestHost host(board);
  // The formed chip is in LCS: programming level 0 is free.
  auto r = host.ok<p::ProgramVerifyResponse>(pv_request(host.next_batch(), {41}, {0}, 300));
  CHECK(r.results[0].passed);
  CHECK(r.results[0].attempts == 0);
  r = host.ok<p::ProgramVerifyResponse>(pv_request(host.next_batch(), {42}, {7}, 300, 20));
  CHECK_FALSE(r.results[0].passed);
  CHECK(r.results[0].attempts == 20);
}

TEST_CASE("endurance: a worn-out cell no longer reaches its band", "[firmware][endurance]") {
  devices::Calibration cal = quiet_calibration();
  cal.endurance.median_cycles = 60;
  cal.endurance.sigma_ln = 0.05;
  cal.endurance.stuck_hcs_probability = 0.0;  // wears out stuck at LCS
  auto board = make_board(10, true, cal);
  TestHost host(board);
  bool failed = false;
  for (int round = 0; round < 80 && !failed; ++round) {
    const std::uint8_t level = round % 2 ? 8 : 0;
    const auto r =
        host.ok<p::ProgramVerifyResponse>(pv_request(host.next_batch(), {100}, {level}, 800, 10));
    failed = !r.results[0].passed;
  }
  CHECK(failed);
  CHECK(board.chip().cell(100).stuck);
  CHECK(board.chip().cell(100).state == CellState::lcs);
}

TEST_CASE("watchdog expiry puts the board in the safe state until acknowledged",
          "[firmware][watchdog]") {
  auto now = std::chrono::steady_clock::time_point{};
  FirmwareOptions options;
  options.clock = [&now] { return now; };
  auto board = make_board(11, true, quiet_calibration(), options);
  TestHost host(board);
  CHECK(host.status(p::WatchdogArmRequest{10}).status == p::Status::kOutOfLimits);
  host.ok<p::EmptyBody>(p::WatchdogArmRequest{200});
  auto st = host.ok<p::GetStatusResponse>(p::GetStatusRequest{});
  CHECK((st.state_flags & p::board_state::kWatchdogArmed) != 0);
  now += std::chrono::milliseconds(150);
  host.ok<p::EmptyBody>(p::WatchdogKickRequest{});
  now += std::chrono::milliseconds(150);
  board.poll();  // 150 ms since the kick: still fine
  CHECK((host.ok<p::GetStatusResponse>(p::GetStatusRequest{}).state_flags &
         p::board_state::kWatchdogTripped) == 0);
  now += std::chrono::milliseconds(250);
  board.poll();
  st = host.ok<p::GetStatusResponse>(p::GetStatusRequest{});
  CHECK((st.state_flags & p::board_state::kWatchdogTripped) != 0);
  CHECK((st.state_flags & p::board_state::kSafe) != 0);
  // A trip disarms (docs/protocol.md 4.10): not armed, timeout 0.
  CHECK((st.state_flags & p::board_state::kWatchdogArmed) == 0);
  CHECK(st.watchdog_timeout_ms == 0);
  p::SetRequest set;
  set.batch = {host.next_batch(), 0, 1};
  set.selection = p::Selection::cell(1, 1);
  set.level = 2;
  CHECK(host.status(set).status == p::Status::kWatchdogTripped);
  CHECK(board.chip().cell(129).set_pulses == 0);
  host.ok<p::EmptyBody>(p::SafeStateRequest{});     // allowed while tripped
  host.ok<p::EmptyBody>(p::WatchdogArmRequest{0});  // acknowledge
  set.batch = {host.next_batch(), 0, 1};
  CHECK(host.status(set).status == p::Status::kOk);
}

TEST_CASE("a frame with RESPONSE set is dropped unanswered, uncounted, without a watchdog kick",
          "[firmware]") {
  auto now = std::chrono::steady_clock::time_point{};
  FirmwareOptions options;
  options.clock = [&now] { return now; };
  auto board = make_board(19, true, quiet_calibration(), options);
  TestHost host(board);
  host.ok<p::EmptyBody>(p::WatchdogArmRequest{200});
  const auto requests = board.stats().request_frames;
  now += std::chrono::milliseconds(150);
  p::FrameHeader header;
  header.flags = p::frame_flags::kResponse;
  header.opcode = static_cast<std::uint8_t>(p::Opcode::kWatchdogKick);
  header.sequence = 999;
  CHECK(host.feed(p::encode_frame(header, {})).empty());
  CHECK(board.stats().request_frames == requests);
  now += std::chrono::milliseconds(100);  // 250 ms since the last request: the kick did not count
  board.poll();
  CHECK((host.ok<p::GetStatusResponse>(p::GetStatusRequest{}).state_flags &
         p::board_state::kWatchdogTripped) != 0);
}

TEST_CASE("corrupted frames: bad payload -> bad_crc to that seq; bad header -> silence",
          "[firmware][faults]") {
  auto board = make_board(12);
  TestHost host(board);
  p::SetRequest set;
  set.batch = {host.next_batch(), 0, 1};
  set.selection = p::Selection::cell(0, 9);
  set.level = 2;
  set.expected_boot_id = board.boot_id();
  auto frame = p::encode_request_frame(77, set);
  auto payload_hit = frame;
  payload_hit[12] ^= 0x10;
  auto replies = host.feed(payload_hit);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].header.sequence == 77);
  CHECK(p::decode_response_status(replies[0].payload).value->status == p::Status::kBadCrc);
  CHECK(board.chip().cell(9).set_pulses == 0);
  auto header_hit = frame;
  header_hit[6] ^= 0x01;
  CHECK(host.feed(header_hit).empty());
  // The clean retry is executed once (bad_crc was not cached).
  replies = host.feed(frame);
  REQUIRE(replies.size() == 1);
  CHECK(p::decode_response_status(replies[0].payload).value->status == p::Status::kOk);
  CHECK(board.chip().cell(9).set_pulses == 1);
  // Garbage between frames is skipped.
  std::vector<std::uint8_t> noisy{0x00, 0xA5, 0x13, 0x37};
  const auto status = p::encode_request_frame(78, p::GetStatusRequest{});
  noisy.insert(noisy.end(), status.begin(), status.end());
  CHECK(host.feed(noisy).size() == 1);
  // Unknown opcode and version.
  p::FrameHeader unknown;
  unknown.opcode = 0x7F;
  unknown.sequence = 79;
  replies = host.feed(p::encode_frame(unknown, {}));
  REQUIRE(replies.size() == 1);
  CHECK(p::decode_response_status(replies[0].payload).value->status == p::Status::kUnknownOpcode);
  unknown.opcode = 0x01;
  unknown.version = 2;
  unknown.sequence = 80;
  replies = host.feed(p::encode_frame(unknown, {}));
  REQUIRE(replies.size() == 1);
  CHECK(p::decode_response_status(replies[0].payload).value->status ==
        p::Status::kUnsupportedVersion);
}

TEST_CASE("without the PROGRAM_VERIFY capability the opcode is not supported", "[firmware]") {
  FirmwareOptions options;
  options.capabilities &= ~(p::capability::kProgramVerify | p::capability::kTrace);
  auto board = make_board(13, true, quiet_calibration(), options);
  TestHost host(board);
  CHECK((host.ok<p::IdentifyResponse>(p::IdentifyRequest{}).capabilities &
         p::capability::kProgramVerify) == 0);
  CHECK(host.status(pv_request(1, {1}, {3})).status == p::Status::kNotSupported);
}

TEST_CASE("device time: array operations advance uptime by the timing model, retries do not",
          "[firmware][timing]") {
  auto board = make_board(14);
  TestHost host(board);
  const auto up0 = host.ok<p::GetStatusResponse>(p::GetStatusRequest{}).uptime_ms;
  const auto t0 = board.device_time_ns();
  host.read_all(p::Selection::array());
  const auto t1 = board.device_time_ns();
  // 16384 conversions plus 8 x ~4.1 kB on the link at 921600 baud: about half a second.
  const devices::TimingModel timing;
  const std::int64_t conversions = 16384 * (timing.adc_conversion_ns + timing.cell_select_ns);
  CHECK(t1 - t0 >= conversions + timing.link_ns(33'000));
  CHECK(t1 - t0 <= conversions + timing.link_ns(34'000) + 8 * timing.command_overhead_ns);
  const auto up1 = host.ok<p::GetStatusResponse>(p::GetStatusRequest{}).uptime_ms;
  CHECK(up1 - up0 == (t1 - t0) / 1'000'000);
  host.ok<p::IdentifyResponse>(p::IdentifyRequest{});
  host.feed(host.last_request());  // identify again (never cached): no device time either
  CHECK(board.device_time_ns() == t1);
}

TEST_CASE("reply time: an array request's device time, the link time of any other",
          "[firmware][timing]") {
  auto board = make_board(15);
  TestHost host(board);
  const devices::TimingModel timing;
  host.ok<p::IdentifyResponse>(p::IdentifyRequest{});
  CHECK(board.take_reply_time_ns() ==
        timing.link_ns(host.last_request().size() + host.last_reply().size()));
  CHECK(board.take_reply_time_ns() == 0);  // taken
  const auto t0 = board.device_time_ns();
  host.read_all(p::Selection::block(0, 0, 1, 128));
  CHECK(board.take_reply_time_ns() == board.device_time_ns() - t0);
  // A retry answered from the reply cache: its frames' link time, no device time.
  const auto t1 = board.device_time_ns();
  host.feed(host.last_request());
  CHECK(board.device_time_ns() == t1);
  CHECK(board.take_reply_time_ns() ==
        timing.link_ns(host.last_request().size() + host.last_reply().size()));
}

TEST_CASE("random bytes and malformed frames never crash the firmware", "[firmware][robustness]") {
  auto board = make_board(15);
  devices::RandomStream rng(1234);
  p::StreamDecoder decoder;
  std::size_t replies = 0;
  for (int round = 0; round < 3000; ++round) {
    std::vector<std::uint8_t> bytes;
    if (round % 2) {
      p::FrameHeader h;
      h.opcode = static_cast<std::uint8_t>(rng.next() % 0x24);
      h.sequence = static_cast<std::uint16_t>(rng.next());
      std::vector<std::uint8_t> payload(rng.next() % 40);
      for (auto& b : payload) b = static_cast<std::uint8_t>(rng.next());
      bytes = p::encode_frame(h, payload);
    } else {
      bytes.resize(rng.next() % 64);
      for (auto& b : bytes) b = static_cast<std::uint8_t>(rng.next());
    }
    for (auto& event : decoder.feed(board.handle_bytes(bytes))) {
      REQUIRE(std::holds_alternative<p::Frame>(event));
      const auto& frame = std::get<p::Frame>(event);
      CHECK((frame.header.flags & p::frame_flags::kResponse) != 0);
      REQUIRE(p::decode_response_status(frame.payload));
      ++replies;
    }
  }
  CHECK(replies >= 1400);
  CHECK(board.stats().reboots == 0);
}

TEST_CASE("the accelerated clock advances device time with the wall clock, and only when asked",
          "[firmware][clock]") {
  auto now = std::chrono::steady_clock::time_point{};
  const auto device_time_after_idle = [&now](double scale) {
    FirmwareOptions options;
    options.clock = [&now] { return now; };
    options.clock_scale = scale;
    auto board = make_board(12, true, quiet_calibration(), options);
    TestHost host(board);
    host.ok<p::GetStatusResponse>(p::GetStatusRequest{});
    const std::int64_t before = board.device_time_ns();
    now += std::chrono::seconds(2);
    const auto status = host.ok<p::GetStatusResponse>(p::GetStatusRequest{});
    return std::pair{board.device_time_ns() - before, status.uptime_ms};
  };
  // Off by default: idle wall-clock time is no device time.
  CHECK(device_time_after_idle(0.0).first == 0);
  // 2 s of wall clock at 3600x: two hours of device time, seen by the host as uptime.
  const auto [advanced_ns, uptime_ms] = device_time_after_idle(3600.0);
  CHECK(advanced_ns == 7'200'000'000'000);
  CHECK(uptime_ms >= 7'200'000);
  CHECK_THROWS_AS(make_board(12, true, quiet_calibration(),
                             [] {
                               FirmwareOptions o;
                               o.clock_scale = -1;
                               return o;
                             }()),
                  std::invalid_argument);
}

// The level table (docs/protocol.md 4.12): the default chip's levels are I_CC = 10 k uA at gates
// 0.6 + sqrt(I_CC / 200 uA) V (0.916 V: 20 uA, 1.047 V: 40 uA, 1.148 V: 60 uA).
TEST_CASE("SET_LEVELS replaces the HCS levels until a reboot, and PROGRAM_VERIFY follows them",
          "[firmware][levels]") {
  auto board = make_board(14);
  TestHost host(board);
  const auto id = host.ok<p::IdentifyResponse>(p::IdentifyRequest{});
  const p::SetLevelsRequest three{{{916, 40.0f}, {1047, 80.0f}, {1148, 120.0f}}};
  const auto table = host.ok<p::LevelTable>(three);
  REQUIRE(table.levels.size() == 4);
  CHECK(table.levels[0] == id.levels[0]);  // the LCS entry stays
  CHECK(table.levels[1] == p::LevelEntry{20'000, 916, 40.0f});
  CHECK(table.levels[2] == p::LevelEntry{40'000, 1047, 80.0f});
  CHECK(table.levels[3] == p::LevelEntry{60'000, 1148, 120.0f});
  // A gate between two calibrated ones: I_CC interpolated (0.95 V: 24.8 uA).
  const auto between = host.ok<p::LevelTable>(p::SetLevelsRequest{{{950, 50.0f}}});
  CHECK(between.levels.at(1).icc_na == Approx(24'800).margin(100));
  host.ok<p::LevelTable>(three);
  CHECK(host.ok<p::IdentifyResponse>(p::IdentifyRequest{}).levels == table.levels);

  // Program-and-verify to level 3 reaches its new target; level 4 no longer exists.
  std::vector<std::uint16_t> cells;
  for (std::uint16_t c = 200; c < 230; ++c) cells.push_back(c);
  const auto pv = host.ok<p::ProgramVerifyResponse>(
      pv_request(host.next_batch(), cells, std::vector<std::uint8_t>(cells.size(), 3), 400));
  for (const auto& r : pv.results) {
    CHECK(r.passed);
    CHECK(to_us(id, r.code) == Approx(120.0).margin(4.0));
  }
  const auto gone = host.status(pv_request(host.next_batch(), {5}, {4}));
  CHECK(gone.status == p::Status::kBadArgument);
  CHECK(gone.error_detail == static_cast<std::uint32_t>(p::ConfigField::kLevel));

  // Refusals name the field and leave the table in force.
  const auto refused = [&](p::SetLevelsRequest request, p::Status status, p::ConfigField field) {
    const auto s = host.status(request);
    CHECK(s.status == status);
    CHECK(s.error_detail == static_cast<std::uint32_t>(field));
  };
  refused({{{916, 40.0f}, {3400, 80.0f}}}, p::Status::kOutOfLimits, p::ConfigField::kLevelGate);
  refused({{{100, 40.0f}}}, p::Status::kOutOfLimits, p::ConfigField::kLevelGate);  // no I_CC
  refused({{{1047, 40.0f}, {916, 80.0f}}}, p::Status::kBadArgument, p::ConfigField::kLevelGate);
  refused({{{916, 80.0f}, {1047, 80.0f}}}, p::Status::kBadArgument, p::ConfigField::kLevelTarget);
  refused({{{916, 0.5f}}}, p::Status::kBadArgument, p::ConfigField::kLevelTarget);  // below LCS
  CHECK(host.ok<p::IdentifyResponse>(p::IdentifyRequest{}).levels == table.levels);

  // No entries: the board's own table; a reboot restores it too.
  CHECK(host.ok<p::LevelTable>(p::SetLevelsRequest{}).levels == id.levels);
  host.ok<p::LevelTable>(three);
  board.power_cycle();
  const auto after = host.ok<p::IdentifyResponse>(p::IdentifyRequest{});
  CHECK(after.boot_id != id.boot_id);
  CHECK(after.levels == id.levels);
}

TEST_CASE("without the LEVEL_TABLE capability SET_LEVELS is not supported", "[firmware][levels]") {
  FirmwareOptions options;
  options.capabilities &= ~p::capability::kLevelTable;
  auto board = make_board(15, true, quiet_calibration(), options);
  TestHost host(board);
  CHECK((host.ok<p::IdentifyResponse>(p::IdentifyRequest{}).capabilities &
         p::capability::kLevelTable) == 0);
  CHECK(host.status(p::SetLevelsRequest{{{916, 40.0f}}}).status == p::Status::kNotSupported);
}
