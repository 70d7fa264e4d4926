#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "drivers/pseudo_terminal.hpp"
#include "drivers/tcp_transport.hpp"
#include "drivers/transport_factory.hpp"
#include "protocols/board_messages.hpp"
#include "sim/server.hpp"

using namespace metaplast;
namespace p = metaplast::protocols;

namespace {

using namespace std::chrono_literals;

// Sends one frame and returns the reply frame's payload (empty on timeout).
std::vector<std::uint8_t> round_trip(drivers::Transport& link,
                                     const std::vector<std::uint8_t>& req) {
  REQUIRE(link.write(req, drivers::deadline_after(2s)).ok());
  p::StreamDecoder decoder;
  std::vector<std::uint8_t> buffer(8192);
  const auto deadline = drivers::deadline_after(5s);
  while (drivers::SteadyClock::now() < deadline) {
    const auto r = link.read_some(buffer, deadline);
    if (r.closed()) break;
    for (auto& event : decoder.feed({buffer.data(), r.bytes})) {
      if (auto* frame = std::get_if<p::Frame>(&event)) return frame->payload;
    }
  }
  return {};
}

// One command stream: identify, configure, program-and-verify, whole-array read, counters.
std::vector<std::vector<std::uint8_t>> run_session(drivers::Transport& link) {
  std::vector<std::vector<std::uint8_t>> replies;
  std::uint16_t seq = 1;
  replies.push_back(round_trip(link, p::encode_request_frame(seq++, p::IdentifyRequest{})));
  const auto id = p::decode_response<p::IdentifyResponse>(replies.back());
  REQUIRE(id);
  p::ProgramVerifyRequest pv;
  pv.batch = {1, 0, 64};
  pv.expected_boot_id = id.value->boot_id;
  pv.options = p::program_verify_options::kTrace;
  for (std::uint16_t i = 0; i < 64; ++i) {
    pv.entries.push_back(
        {static_cast<std::uint16_t>(i * 257 % 16384), static_cast<std::uint8_t>(i % 9), 40, 400});
  }
  replies.push_back(round_trip(link, p::encode_request_frame(seq++, pv)));
  for (std::uint16_t offset = 0; offset < 16384; offset += 2048) {
    replies.push_back(round_trip(
        link, p::encode_request_frame(seq++, p::ReadRequest{p::Selection::array(), offset, 2048})));
  }
  replies.push_back(round_trip(
      link, p::encode_request_frame(seq++, p::ReadCountersRequest{p::Selection::row(0), 0, 128})));
  replies.push_back(round_trip(link, p::encode_request_frame(seq++, p::GetStatusRequest{})));
  for (const auto& r : replies) REQUIRE_FALSE(r.empty());
  return replies;
}

sim::SimOptions formed_options(std::uint64_t seed) {
  sim::SimOptions o;
  o.seed = seed;
  o.formed = true;
  return o;
}

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         ("metaplast_sim_srv_" + std::to_string(::getpid()) + "_" + name);
}

}  // namespace

TEST_CASE("sim: address options", "[server]") {
  const auto o = sim::parse_sim_options(drivers::parse_address(
      "sim:?seed=5&formed=1&drop=0.1&corrupt=0.02&reboot_at=3,9&stuck=4,16383&state=/tmp/x"
      "&program_verify=0"));
  CHECK(o.seed == 5);
  CHECK(o.formed);
  CHECK(o.faults.drop_rate == Approx(0.1));
  CHECK(o.faults.corrupt_rate == Approx(0.02));
  CHECK(o.faults.reboot_at_frames == std::vector<std::uint64_t>{3, 9});
  CHECK(o.faults.stuck_cells == std::vector<int>{4, 16383});
  REQUIRE(o.state_file);
  CHECK(o.state_file->string() == "/tmp/x");
  CHECK((o.capabilities & p::capability::kProgramVerify) == 0);
  CHECK((o.capabilities & p::capability::kBatchStatus) != 0);
  CHECK((sim::parse_sim_options(drivers::parse_address("sim:?batch_status=0")).capabilities &
         p::capability::kBatchStatus) == 0);
  CHECK_THROWS_WITH(sim::parse_sim_options(drivers::parse_address("sim:?sead=1")),
                    Catch::Contains("sead"));
  CHECK_THROWS_WITH(sim::parse_sim_options(drivers::parse_address("sim:?drop=2")),
                    Catch::Contains("drop"));
  CHECK_THROWS_WITH(sim::parse_sim_options(drivers::parse_address("sim:?stuck=1,x")),
                    Catch::Contains("stuck"));
  CHECK(sim::parse_fault_spec("drop=0.5&dead_after=7").dead_after_frames == 7);
  // The accelerated clock: off unless asked, a scale >= 0.
  CHECK(o.clock_scale == 0.0);
  CHECK(sim::parse_sim_options(drivers::parse_address("sim:?clock=3600")).clock_scale == 3600.0);
  CHECK_THROWS_WITH(sim::parse_sim_options(drivers::parse_address("sim:?clock=-1")),
                    Catch::Contains("clock=3600"));
}

TEST_CASE("in-process, TCP and pseudo-terminal boards with the same seed answer identically",
          "[server][reproducibility]") {
  auto in_process = sim::make_in_process_transport(formed_options(31));
  const auto reference = run_session(*in_process);
  in_process->close();

  {  // TCP: the firmware on a server thread, the host through TcpTransport.
    auto firmware = sim::make_firmware(formed_options(31));
    drivers::TcpListener listener("127.0.0.1", 0);
    std::atomic<bool> stop{false};
    sim::ServeOptions serve_options;
    serve_options.stop = &stop;
    std::thread server([&] { sim::serve_tcp(listener, *firmware, serve_options); });
    {
      auto client = drivers::TcpTransport::connect("127.0.0.1", listener.port());
      CHECK(run_session(*client) == reference);
    }
    stop = true;
    server.join();
  }
  {  // Pseudo-terminal: the host opens the slave through the serial driver.
    auto firmware = sim::make_firmware(formed_options(31));
    drivers::PseudoTerminal pty;
    std::atomic<bool> stop{false};
    sim::ServeOptions serve_options;
    serve_options.stop = &stop;
    std::thread server([&] { sim::serve(pty, *firmware, serve_options); });
    {
      auto client = drivers::make_transport(pty.client_address());
      CHECK(run_session(*client) == reference);
    }
    stop = true;
    server.join();
  }
}

namespace {

// A TCP board on a server thread with a short idle timeout.
struct TcpBoardThread {
  explicit TcpBoardThread(std::chrono::milliseconds idle_timeout)
      : firmware(sim::make_firmware(formed_options(41))) {
    options.stop = &stop;
    options.poll_interval = 5ms;
    options.idle_timeout = idle_timeout;
    server = std::thread([this] { sim::serve_tcp(listener, *firmware, options); });
  }
  ~TcpBoardThread() {
    stop = true;
    server.join();
  }
  std::unique_ptr<drivers::Transport> connect() {
    return drivers::TcpTransport::connect("127.0.0.1", listener.port());
  }
  std::unique_ptr<sim::BoardFirmware> firmware;
  drivers::TcpListener listener{"127.0.0.1", 0};
  std::atomic<bool> stop{false};
  sim::ServeOptions options;
  std::thread server;
};

p::ResponseStatus status_of(const std::vector<std::uint8_t>& payload) {
  const auto status = p::decode_response_status(payload);
  REQUIRE(status);
  return *status.value;
}

}  // namespace

TEST_CASE("a silent TCP client neither blocks another host nor holds the board for ever",
          "[server][tcp]") {
  TcpBoardThread board(300ms);
  auto silent = board.connect();  // connects first (served first) and sends nothing
  auto second = board.connect();
  // The second host gets an answer at once, not silence: BUSY, naming the reason.
  const auto reply = round_trip(*second, p::encode_request_frame(1, p::GetStatusRequest{}));
  REQUIRE_FALSE(reply.empty());
  const auto busy = status_of(reply);
  CHECK(busy.status == p::Status::kBusy);
  CHECK(busy.error_detail == p::busy_detail::kServingAnotherHost);
  CHECK(busy.boot_id == board.firmware->boot_id());
  // The silent client is dropped after the idle timeout (the board closes its end) ...
  std::vector<std::uint8_t> buffer(64);
  const auto r = silent->read_some(buffer, drivers::deadline_after(30s));
  CHECK(r.closed());
  // ... and the next host is served.
  auto next = board.connect();
  const auto id = p::decode_response<p::IdentifyResponse>(
      round_trip(*next, p::encode_request_frame(2, p::IdentifyRequest{})));
  CHECK(id);
}

TEST_CASE("a host that reconnects right after closing is served, not refused", "[server][tcp]") {
  TcpBoardThread board(0ms);
  for (std::uint16_t i = 1; i <= 20; ++i) {
    auto client = board.connect();
    const auto reply = round_trip(*client, p::encode_request_frame(i, p::GetStatusRequest{}));
    INFO("connection " << i);
    CHECK(status_of(reply).status == p::Status::kOk);
    client->close();
  }
}

TEST_CASE("the state file keeps the chip across board restarts", "[server][state]") {
  const auto path = temp_path("restart.state");
  std::filesystem::remove(path);
  sim::SimOptions options = formed_options(32);
  options.state_file = path;
  std::vector<std::uint8_t> counters_reply;
  std::uint32_t first_boot = 0;
  {
    auto link = sim::make_in_process_transport(options);
    const auto id = round_trip(*link, p::encode_request_frame(1, p::IdentifyRequest{}));
    first_boot = p::decode_response<p::IdentifyResponse>(id).value->boot_id;
    p::SetRequest set;
    set.batch = {1, 0, 128};
    set.selection = p::Selection::row(2);
    set.level = 6;
    set.expected_boot_id = first_boot;
    REQUIRE(
        p::decode_response<p::PulseResponse>(round_trip(*link, p::encode_request_frame(2, set))));
    counters_reply = round_trip(
        *link, p::encode_request_frame(3, p::ReadCountersRequest{p::Selection::row(2), 0, 128}));
  }  // closing the link saves the state
  REQUIRE(std::filesystem::exists(path));
  options.formed = false;  // ignored: the chip exists already
  options.seed = 999;      // ignored likewise
  auto link = sim::make_in_process_transport(options);
  const auto id = round_trip(*link, p::encode_request_frame(1, p::IdentifyRequest{}));
  const auto boot = p::decode_response<p::IdentifyResponse>(id).value->boot_id;
  CHECK(boot != first_boot);
  const auto counters = p::decode_response<p::ReadCountersResponse>(round_trip(
      *link, p::encode_request_frame(2, p::ReadCountersRequest{p::Selection::row(2), 0, 128})));
  REQUIRE(counters);
  CHECK(*counters.value == *p::decode_response<p::ReadCountersResponse>(counters_reply).value);
  for (const auto& c : counters.value->counters) CHECK(c.set_pulses == 1);
  link->close();
  std::filesystem::remove(path);
}

TEST_CASE("a fresh simulated chip is unformed unless asked", "[server]") {
  sim::SimOptions options;
  options.seed = 33;
  auto unformed = sim::make_firmware(options);
  CHECK(unformed->chip().cell(0).state == sim::CellState::pristine);
  options.formed = true;
  auto formed = sim::make_firmware(options);
  CHECK(formed->chip().cell(0).state == sim::CellState::lcs);
}

TEST_CASE("the realistic link holds every reply for its device and link time, same answers",
          "[server][timing]") {
  auto in_process = sim::make_in_process_transport(formed_options(31));
  const auto reference = run_session(*in_process);
  in_process->close();

  auto firmware = sim::make_firmware(formed_options(31));
  const std::int64_t booted_ns = firmware->device_time_ns();
  drivers::TcpListener listener("127.0.0.1", 0);
  std::atomic<bool> stop{false};
  sim::ServeOptions serve_options;
  serve_options.stop = &stop;
  serve_options.realistic_link = true;
  std::thread server([&] { sim::serve_tcp(listener, *firmware, serve_options); });
  const auto start = std::chrono::steady_clock::now();
  {
    auto client = drivers::TcpTransport::connect("127.0.0.1", listener.port());
    CHECK(run_session(*client) == reference);
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  stop = true;
  server.join();
  // No reply left before its request's time on a real board had passed: the session takes at
  // least the device time of its array requests (about 0.5 s, most of it the whole-array read
  // over the UART).
  const auto device_time = std::chrono::nanoseconds(firmware->device_time_ns() - booted_ns);
  INFO("elapsed " << std::chrono::duration<double>(elapsed).count() << " s, device time "
                  << std::chrono::duration<double>(device_time).count() << " s");
  CHECK(device_time > 400ms);
  CHECK(elapsed >= device_time);
}
