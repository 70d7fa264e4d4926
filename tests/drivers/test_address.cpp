// Address parsing, the typed parameter getters, and the scheme registry of make_transport.
#include <catch2/catch.hpp>
#include <string>

#include "drivers/address.hpp"
#include "drivers/pipe_transport.hpp"
#include "drivers/transport_factory.hpp"

using namespace metaplast::drivers;
using Catch::Matchers::Contains;

namespace {

// The message of the AddressError thrown by `f`, or "" if none was thrown.
template <typename F>
std::string address_error(F&& f) {
  try {
    f();
  } catch (const AddressError& e) {
    return e.what();
  }
  return {};
}

}  // namespace

TEST_CASE("parse_address splits scheme, target and parameters", "[address]") {
  const Address a = parse_address("serial:/dev/ttyUSB0?baud=115200&flow=rtscts");
  CHECK(a.scheme == "serial");
  CHECK(a.target == "/dev/ttyUSB0");
  REQUIRE(a.params.size() == 2);
  CHECK(a.get_int("baud", 0, 1, 10'000'000) == 115200);
  CHECK(a.get_string("flow", "none") == "rtscts");
  CHECK(a.get_string("absent", "fallback") == "fallback");

  const Address tcp = parse_address("TCP:127.0.0.1:5025");
  CHECK(tcp.scheme == "tcp");
  CHECK(tcp.target == "127.0.0.1:5025");
  CHECK(tcp.params.empty());
  CHECK(split_host_port(tcp) == std::pair<std::string, std::uint16_t>{"127.0.0.1", 5025});
  CHECK(split_host_port(parse_address("tcp:[::1]:80")) ==
        std::pair<std::string, std::uint16_t>{"::1", 80});

  const Address sim = parse_address("sim:?seed=18446744073709551615&formed=yes");
  CHECK(sim.scheme == "sim");
  CHECK(sim.target.empty());
  CHECK(sim.get_uint64("seed", 0) == 18446744073709551615ull);
  CHECK(sim.get_bool("formed", false));
  CHECK(parse_address("sim:").params.empty());
  CHECK(parse_address("sim:?").params.empty());
}

TEST_CASE("a bare absolute path is a serial address (by-id names included)", "[address]") {
  const Address a = parse_address("/dev/serial/by-id/usb-FTDI_FT232R_A1B2C3-if00-port0?baud=9600");
  CHECK(a.scheme == "serial");
  CHECK(a.target == "/dev/serial/by-id/usb-FTDI_FT232R_A1B2C3-if00-port0");
  CHECK(a.get_int("baud", 0, 50, 1'000'000) == 9600);
}

TEST_CASE("malformed addresses are refused with a message saying what is wrong", "[address]") {
  CHECK_THAT(address_error([] { parse_address(""); }), Contains("empty"));
  CHECK_THAT(address_error([] { parse_address("ttyUSB0"); }), Contains("no scheme"));
  CHECK_THAT(address_error([] { parse_address(":foo"); }), Contains("scheme"));
  CHECK_THAT(address_error([] { parse_address("se rial:/dev/x"); }), Contains("se rial"));
  CHECK_THAT(address_error([] { parse_address("sim:?seed"); }), Contains("key=value"));
  CHECK_THAT(address_error([] { parse_address("sim:?=3"); }), Contains("empty key"));
  CHECK_THAT(address_error([] { parse_address("sim:?seed=1&&x=2"); }), Contains("empty parameter"));
  CHECK_THAT(address_error([] { parse_address("sim:?seed=1&seed=2"); }),
             Contains("'seed' is given twice"));
  // Every message quotes the address as given.
  CHECK_THAT(address_error([] { parse_address("sim:?seed=1&seed=2"); }),
             Contains("'sim:?seed=1&seed=2'"));
}

TEST_CASE("typed getters reject bad numbers, ranges, booleans and choices", "[address]") {
  const Address a = parse_address("x:?n=12x&big=99999&neg=-1&b=maybe&f=1e999&c=odd&d=2.5");
  CHECK_THAT(address_error([&] { a.get_int("n", 0, 0, 100); }), Contains("n='12x' is not"));
  CHECK_THAT(address_error([&] { a.get_int("big", 0, 0, 100); }), Contains("out of range"));
  CHECK_THAT(address_error([&] { a.get_int("big", 0, 0, 100); }), Contains("[0, 100]"));
  CHECK_THAT(address_error([&] { a.get_uint64("neg", 0); }), Contains("unsigned"));
  CHECK_THAT(address_error([&] { a.get_bool("b", false); }), Contains("true/false"));
  CHECK_THAT(address_error([&] { a.get_double("f", 0); }), Contains("finite"));
  CHECK_THAT(address_error([&] {
               a.get_choice("c", "even", {"even", "none"});
             }),
             Contains("even, none"));
  CHECK(a.get_double("d", 0) == 2.5);
  CHECK_THAT(address_error([&] { a.expect_only({"n", "big"}); }), Contains("unknown parameter"));
  CHECK_THAT(address_error([&] {
               a.expect_only({"n", "big"});
             }),
             Contains("known parameters: n, big"));
}

TEST_CASE("host:port errors name the expected form", "[address]") {
  CHECK_THAT(address_error([] { split_host_port(parse_address("tcp:localhost")); }),
             Contains("missing ':PORT'"));
  CHECK_THAT(address_error([] { split_host_port(parse_address("tcp::5025")); }),
             Contains("missing host"));
  CHECK_THAT(address_error([] { split_host_port(parse_address("tcp:h:0")); }),
             Contains("1..65535"));
  CHECK_THAT(address_error([] { split_host_port(parse_address("tcp:h:70000")); }),
             Contains("1..65535"));
  CHECK_THAT(address_error([] { split_host_port(parse_address("tcp:h:50x")); }),
             Contains("tcp:127.0.0.1:5025"));
  CHECK_THAT(address_error([] { split_host_port(parse_address("tcp:::1:80")); }), Contains("IPv6"));
}

TEST_CASE("make_transport rejects unknown schemes listing the accepted forms", "[factory]") {
  const std::string message = address_error([] { make_transport("usb:0"); });
  CHECK_THAT(message, Contains("unknown scheme 'usb:'"));
  CHECK_THAT(message, Contains("serial:/dev/ttyUSB0?baud=921600"));
  CHECK_THAT(message, Contains("tcp:127.0.0.1:5025"));
  CHECK_THAT(address_error([] { make_transport("nonsense"); }), Contains("accepted forms"));
}

TEST_CASE("make_transport rejects bad built-in parameters", "[factory]") {
  CHECK_THAT(address_error([] { make_transport("serial:/dev/null?speed=9600"); }),
             Contains("unknown parameter 'speed'"));
  CHECK_THAT(address_error([] { make_transport("serial:/dev/null?baud=fast"); }),
             Contains("baud='fast'"));
  CHECK_THAT(address_error([] { make_transport("serial:/dev/null?flow=dtr"); }),
             Contains("none, rtscts, xonxoff"));
  CHECK_THAT(address_error([] { make_transport("serial:"); }), Contains("missing the port path"));
  CHECK_THAT(address_error([] { make_transport("serial:ttyUSB0"); }), Contains("absolute path"));
  CHECK_THAT(address_error([] { make_transport("tcp:127.0.0.1:5025?connect_timeout_ms=0"); }),
             Contains("out of range"));
  CHECK_THAT(address_error([] { make_transport("tcp:127.0.0.1"); }), Contains("missing ':PORT'"));
}

TEST_CASE("a missing serial port fails with TransportError naming it", "[factory]") {
  try {
    make_transport("serial:/dev/metaplast-no-such-port");
    FAIL("no exception");
  } catch (const TransportError& e) {
    CHECK_THAT(e.what(), Contains("/dev/metaplast-no-such-port"));
    CHECK_THAT(e.what(), Contains("metaplast ports"));
  }
}

TEST_CASE("registered schemes are made by their factory and listed in messages", "[factory]") {
  std::string seen_seed;
  std::unique_ptr<Transport> board_end;
  register_transport_scheme(
      "loop",
      [&](const Address& address) {
        address.expect_only({"seed"});
        seen_seed = std::to_string(address.get_uint64("seed", 0));
        auto pair = make_pipe_pair("loop");
        board_end = std::move(pair.second);
        return std::move(pair.first);
      },
      "loop:?seed=1");
  auto transport = make_transport("loop:?seed=7");
  CHECK(seen_seed == "7");
  REQUIRE(transport);
  CHECK(transport->is_open());
  // The factory's parameter checks reach the caller.
  CHECK_THAT(address_error([] { make_transport("loop:?sed=7"); }), Contains("unknown parameter"));
  CHECK_THAT(address_error([] { make_transport("usb:0"); }), Contains("loop:?seed=1"));
  const auto forms = accepted_address_forms();
  CHECK(forms.back() == "loop:?seed=1");

  CHECK_THROWS_AS(
      register_transport_scheme("tcp", [](const Address&) { return std::unique_ptr<Transport>(); }),
      std::invalid_argument);
  CHECK_THROWS_AS(register_transport_scheme(
                      "Bad Name", [](const Address&) { return std::unique_ptr<Transport>(); }),
                  std::invalid_argument);

  unregister_transport_scheme("loop");
  CHECK_THAT(address_error([] { make_transport("loop:?seed=7"); }), Contains("unknown scheme"));
}

TEST_CASE("check_address: an address is checked as make_transport would, without opening it") {
  using metaplast::drivers::AddressError;
  using metaplast::drivers::check_address;
  // Nothing is opened: a serial port that does not exist passes, its parameters do not.
  CHECK_NOTHROW(check_address("serial:/dev/does-not-exist?baud=115200"));
  CHECK_NOTHROW(check_address("tcp:127.0.0.1:1"));
  CHECK_THROWS_WITH(check_address("gpib:5"), Catch::Contains("unknown scheme 'gpib:'") &&
                                                 Catch::Contains("tcp:127.0.0.1:5025"));
  CHECK_THROWS_WITH(check_address("serial:/dev/ttyUSB0?baud=1"), Catch::Contains("baud"));
  CHECK_THROWS_WITH(check_address("serial:/dev/ttyUSB0?bad=1"), Catch::Contains("bad"));
  CHECK_THROWS_AS(check_address("tcp:localhost"), AddressError);
  // A registered scheme's own check runs; without one, the syntax is all that is checked.
  metaplast::drivers::register_transport_scheme(
      "checked", [](const metaplast::drivers::Address&) { return nullptr; }, "checked:?x=1",
      [](const metaplast::drivers::Address& a) { a.expect_only({"x"}); });
  CHECK_NOTHROW(check_address("checked:?x=1"));
  CHECK_THROWS_WITH(check_address("checked:?y=1"), Catch::Contains("y"));
  metaplast::drivers::unregister_transport_scheme("checked");
  CHECK_THROWS_WITH(check_address("checked:?x=1"), Catch::Contains("unknown scheme"));
}
