// TCP over loopback: TcpListener (server side, for the simulated board) and TcpTransport.
#include <catch2/catch.hpp>
#include <thread>

#include "drivers/tcp_transport.hpp"
#include "drivers/transport_factory.hpp"
#include "tests/drivers/recording_observer.hpp"

using namespace metaplast::drivers;
using namespace metaplast::drivers::testing;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

struct Connected {
  TcpListener listener;
  std::unique_ptr<Transport> client;
  std::unique_ptr<Transport> server;
};

std::unique_ptr<Connected> connect_loopback() {
  auto c = std::make_unique<Connected>();
  c->client = make_transport(c->listener.address());
  c->server = c->listener.accept(deadline_after(10s));
  return c;
}

}  // namespace

TEST_CASE("a listener on port 0 reports its actual port and address", "[tcp]") {
  TcpListener listener;
  CHECK(listener.port() != 0);
  CHECK(listener.host() == "127.0.0.1");
  CHECK(listener.address() == "tcp:127.0.0.1:" + std::to_string(listener.port()));
}

TEST_CASE("TCP loopback exchanges 1 MiB both ways", "[tcp]") {
  auto c = connect_loopback();
  REQUIRE(c->client);
  REQUIRE(c->server);
  CHECK(c->client->address() == c->listener.address());
  const auto up = pattern_bytes(1 << 20, 11);
  const auto down = pattern_bytes(1 << 20, 12);
  const auto x = exchange_both_ways(*c->client, *c->server, up, down, deadline_after(60s));
  CHECK(x.a_write.ok());
  CHECK(x.b_write.ok());
  CHECK(x.a_read.ok());
  CHECK(x.b_read.ok());
  CHECK(x.received_by_b == up);
  CHECK(x.received_by_a == down);
}

TEST_CASE("a TCP read with nothing sent returns timeout, and the link stays usable", "[tcp]") {
  auto c = connect_loopback();
  REQUIRE(c->server);
  std::uint8_t buffer[8];
  const auto start = SteadyClock::now();
  const IoResult r = c->client->read_some(buffer, deadline_after(100ms));
  CHECK(r.status == IoStatus::timeout);
  CHECK(SteadyClock::now() - start < 10s);
  CHECK(c->client->is_open());
  const std::uint8_t ping[] = {'p'};
  REQUIRE(c->server->write(ping, deadline_after(1s)).ok());
  CHECK(c->client->read_some(buffer, deadline_after(5s)).bytes == 1);
}

TEST_CASE("peer close gives the bytes sent before it, then status closed", "[tcp]") {
  auto c = connect_loopback();
  REQUIRE(c->server);
  const auto last_words = pattern_bytes(1000, 13);
  REQUIRE(c->server->write(last_words, deadline_after(5s)).ok());
  c->server->close();
  std::vector<std::uint8_t> got(last_words.size());
  CHECK(c->client->read_exact(got, deadline_after(10s)).ok());
  CHECK(got == last_words);
  std::uint8_t buffer[8];
  const IoResult end = c->client->read_some(buffer, deadline_after(10s));
  CHECK(end.status == IoStatus::closed);
  CHECK_THAT(end.message, Contains("peer closed"));
  CHECK_FALSE(c->client->is_open());
  // A write after the drop does not hang or raise SIGPIPE.
  CHECK(c->client->write(last_words, deadline_after(5s)).status == IoStatus::closed);
}

TEST_CASE("writes to a peer that went away end in closed, not a hang", "[tcp]") {
  auto c = connect_loopback();
  REQUIRE(c->server);
  c->server.reset();
  const auto chunk = pattern_bytes(64 * 1024, 14);
  IoResult r;
  for (int i = 0; i < 200 && r.status == IoStatus::ok; ++i)
    r = c->client->write(chunk, deadline_after(5s));
  CHECK(r.status == IoStatus::closed);
}

TEST_CASE("close() from another thread wakes a blocked TCP read", "[tcp]") {
  auto c = connect_loopback();
  REQUIRE(c->server);
  IoResult result;
  std::thread reader([&] {
    std::uint8_t buffer[4];
    result = c->client->read_some(buffer, deadline_after(60s));
  });
  std::this_thread::sleep_for(50ms);
  c->client->close();
  reader.join();
  CHECK(result.status == IoStatus::closed);
}

TEST_CASE("flush_input drops TCP bytes already received", "[tcp]") {
  auto c = connect_loopback();
  REQUIRE(c->server);
  const std::uint8_t stale[] = {1, 2, 3, 4};
  REQUIRE(c->server->write(stale, deadline_after(1s)).ok());
  std::this_thread::sleep_for(50ms);  // let loopback deliver them
  c->client->flush_input();
  const std::uint8_t fresh[] = {42};
  REQUIRE(c->server->write(fresh, deadline_after(1s)).ok());
  std::uint8_t buffer[8];
  const IoResult r = c->client->read_some(buffer, deadline_after(5s));
  REQUIRE(r.bytes == 1);
  CHECK(buffer[0] == 42);
}

TEST_CASE("accept returns nullptr at its deadline and after close()", "[tcp]") {
  TcpListener listener;
  CHECK(listener.accept(deadline_after(50ms)) == nullptr);
  std::unique_ptr<Transport> accepted;
  std::thread acceptor([&] { accepted = listener.accept(deadline_after(60s)); });
  std::this_thread::sleep_for(50ms);
  listener.close();
  acceptor.join();
  CHECK(accepted == nullptr);
}

TEST_CASE("connecting to a closed port fails quickly with a clear message", "[tcp]") {
  std::uint16_t port = 0;
  {
    TcpListener listener;  // find a free port, then free it again
    port = listener.port();
  }
  const auto start = SteadyClock::now();
  try {
    make_transport("tcp:127.0.0.1:" + std::to_string(port) + "?connect_timeout_ms=5000");
    FAIL("connected to a closed port");
  } catch (const TransportError& e) {
    CHECK_THAT(e.what(), Contains("tcp:127.0.0.1:" + std::to_string(port)));
    CHECK_THAT(e.what(), Contains("refused"));
  }
  CHECK(SteadyClock::now() - start < 5s);  // refused at once, not after the connect timeout
}

TEST_CASE("the observer taps a TCP link", "[tcp][observer]") {
  auto c = connect_loopback();
  REQUIRE(c->server);
  auto observer = std::make_shared<RecordingObserver>();
  c->client->set_observer(observer);
  const auto request = pattern_bytes(10'000, 15);
  const auto reply = pattern_bytes(20'000, 16);
  const auto x = exchange_both_ways(*c->client, *c->server, request, reply, deadline_after(20s));
  REQUIRE(x.a_read.ok());
  CHECK(RecordingObserver::concat(observer->writes()) == request);
  CHECK(RecordingObserver::concat(observer->reads()) == reply);
}
