// The serial driver (libserialport) talking to a PseudoTerminal: how the simulated board is
// reached "exactly as a USB board". Also the serial port listing.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "drivers/pseudo_terminal.hpp"
#include "drivers/serial_transport.hpp"
#include "drivers/transport_factory.hpp"
#include "tests/drivers/recording_observer.hpp"

using namespace metaplast::drivers;
using namespace metaplast::drivers::testing;
using namespace std::chrono_literals;

TEST_CASE("a pseudo-terminal gives a /dev/pts slave path and a serial address", "[pty]") {
  PseudoTerminal pty;
  CHECK(pty.slave_path().rfind("/dev/pts/", 0) == 0);
  CHECK(std::filesystem::exists(pty.slave_path()));
  CHECK(pty.client_address() == "serial:" + pty.slave_path() + "?baud=921600");
  CHECK(pty.is_open());
}

TEST_CASE("libserialport opens the pty slave at 921600 8N1 and bytes flow both ways",
          "[pty][serial]") {
  PseudoTerminal board;
  auto host = make_transport(board.client_address(921600));
  REQUIRE(host);
  auto* serial = dynamic_cast<SerialTransport*>(host.get());
  REQUIRE(serial != nullptr);
  CHECK(serial->settings().baud == 921600);
  CHECK(serial->settings().flow == FlowControl::none);
  CHECK(serial->port_path() == board.slave_path());

  // Every byte value, including the ones a cooked tty would eat (^C, ^S, ^Q, CR, LF, DEL).
  std::vector<std::uint8_t> all_values(256);
  for (int i = 0; i < 256; ++i) all_values[i] = static_cast<std::uint8_t>(i);
  auto request = pattern_bytes(100'000 + 256, 21);
  std::copy(all_values.begin(), all_values.end(), request.begin());
  auto reply = pattern_bytes(150'000 + 256, 22);
  std::copy(all_values.begin(), all_values.end(), reply.end() - 256);

  const auto x = exchange_both_ways(*host, board, request, reply, deadline_after(30s));
  CHECK(x.a_write.ok());
  CHECK(x.b_write.ok());
  CHECK(x.a_read.ok());
  CHECK(x.b_read.ok());
  CHECK(x.received_by_b == request);
  CHECK(x.received_by_a == reply);
}

TEST_CASE("serial reads time out, and closing the pty gives status closed", "[pty][serial]") {
  auto board = std::make_unique<PseudoTerminal>();
  SerialTransport host(board->slave_path(), SerialSettings{921600, FlowControl::none});
  std::uint8_t buffer[8];
  const auto start = SteadyClock::now();
  CHECK(host.read_some(buffer, deadline_after(100ms)).status == IoStatus::timeout);
  CHECK(SteadyClock::now() - start < 10s);
  CHECK(host.is_open());

  const std::uint8_t bye[] = {'b', 'y', 'e'};
  REQUIRE(board->write(bye, deadline_after(1s)).ok());
  std::vector<std::uint8_t> got(3);
  REQUIRE(host.read_exact(got, deadline_after(5s)).ok());
  board.reset();  // the simulated board process exits: the pty disappears
  const IoResult end = host.read_some(buffer, deadline_after(10s));
  CHECK(end.status == IoStatus::closed);
  CHECK_FALSE(host.is_open());
}

TEST_CASE("the host can close and reopen the pty (a reconnect)", "[pty][serial]") {
  PseudoTerminal board;
  const std::uint8_t one[] = {1};
  const std::uint8_t two[] = {2};
  {
    SerialTransport first(board.slave_path());
    REQUIRE(first.write(one, deadline_after(1s)).ok());
  }
  std::uint8_t buffer[4];
  REQUIRE(board.read_some(buffer, deadline_after(5s)).bytes == 1);
  CHECK(buffer[0] == 1);
  SerialTransport second(board.slave_path());
  REQUIRE(second.write(two, deadline_after(1s)).ok());
  REQUIRE(board.read_some(buffer, deadline_after(5s)).bytes == 1);
  CHECK(buffer[0] == 2);
  REQUIRE(board.write(one, deadline_after(1s)).ok());
  CHECK(second.read_some(buffer, deadline_after(5s)).bytes == 1);
}

TEST_CASE("the observer sees serial bytes both ways", "[pty][serial][observer]") {
  PseudoTerminal board;
  SerialTransport host(board.slave_path());
  auto observer = std::make_shared<RecordingObserver>();
  host.set_observer(observer);
  const auto request = pattern_bytes(4000, 23);
  const auto reply = pattern_bytes(6000, 24);
  const auto x = exchange_both_ways(host, board, request, reply, deadline_after(20s));
  REQUIRE(x.a_read.ok());
  CHECK(RecordingObserver::concat(observer->writes()) == request);
  CHECK(RecordingObserver::concat(observer->reads()) == reply);
}

TEST_CASE("list_serial_ports runs and its entries are consistent", "[serial]") {
  const auto ports = list_serial_ports();  // often empty in a container: must not throw
  for (const auto& port : ports) {
    CHECK(port.path.rfind("/dev/", 0) == 0);
    if (!port.by_id_path.empty()) {
      CHECK(std::filesystem::canonical(port.by_id_path) == std::filesystem::canonical(port.path));
    }
  }
  CHECK(find_serial_by_id_path("/dev/metaplast-no-such-port").empty());
}

TEST_CASE("a symlinked port name (as in /dev/serial/by-id/) opens the device it names",
          "[pty][serial]") {
  PseudoTerminal board;
  const auto dir =
      std::filesystem::temp_directory_path() / ("metaplast-by-id-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto link = dir / "usb-Metaplast_Array_Board_SN0001-if00-port0";
  std::filesystem::remove(link);
  std::filesystem::create_symlink(board.slave_path(), link);
  {
    // Both the serial: form and a bare absolute path.
    for (const std::string& address : {"serial:" + link.string() + "?baud=921600", link.string()}) {
      auto host = make_transport(address);
      const std::uint8_t ping[] = {0x55};
      REQUIRE(host->write(ping, deadline_after(1s)).ok());
      std::uint8_t buffer[4];
      REQUIRE(board.read_some(buffer, deadline_after(5s)).bytes == 1);
      CHECK(buffer[0] == 0x55);
      CHECK(host->address().find(link.string()) != std::string::npos);
    }
  }
  std::filesystem::remove_all(dir);
}
