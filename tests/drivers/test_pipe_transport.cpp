// In-process pipe pairs, and through them the promises of the Transport base class: deadlines,
// timeouts, closed links, close() from another thread, the observer tap.
#include <catch2/catch.hpp>
#include <thread>

#include "drivers/pipe_transport.hpp"
#include "tests/drivers/recording_observer.hpp"

using namespace metaplast::drivers;
using namespace metaplast::drivers::testing;
using namespace std::chrono_literals;

TEST_CASE("a pipe pair carries bytes both ways across threads", "[pipe]") {
  auto [a, b] = make_pipe_pair("t", 4096);  // small capacity: writes must wait for the reader
  const auto a_to_b = pattern_bytes(300'000, 1);
  const auto b_to_a = pattern_bytes(200'000, 2);
  const auto x = exchange_both_ways(*a, *b, a_to_b, b_to_a, deadline_after(20s));
  CHECK(x.a_write.ok());
  CHECK(x.b_write.ok());
  CHECK(x.a_read.ok());
  CHECK(x.b_read.ok());
  CHECK(x.received_by_b == a_to_b);
  CHECK(x.received_by_a == b_to_a);
  CHECK(a->address() == "pipe:t/0");
  CHECK(b->address() == "pipe:t/1");
}

TEST_CASE("read_some returns what is there, or timeout at the deadline", "[pipe]") {
  auto [a, b] = make_pipe_pair();
  std::uint8_t buffer[16];
  const auto start = SteadyClock::now();
  const IoResult nothing = b->read_some(buffer, deadline_after(50ms));
  CHECK(nothing.status == IoStatus::timeout);
  CHECK(nothing.bytes == 0);
  CHECK_FALSE(nothing.message.empty());
  CHECK(SteadyClock::now() - start < 5s);  // generous: returns at its deadline, not never
  CHECK(b->is_open());                     // a timeout is not a closed link

  const std::uint8_t hello[] = {'h', 'i', '!'};
  REQUIRE(a->write(hello, deadline_after(1s)).ok());
  const IoResult got = b->read_some(buffer, deadline_after(1s));
  CHECK(got.ok());
  CHECK(got.bytes == 3);
  CHECK(std::equal(hello, hello + 3, buffer));

  // A deadline already in the past still delivers bytes that are waiting.
  REQUIRE(a->write(hello, deadline_after(1s)).ok());
  CHECK(b->read_some(buffer, SteadyClock::now() - 1s).bytes == 3);

  // read_exact: partial fill then timeout reports how much arrived.
  REQUIRE(a->write(hello, deadline_after(1s)).ok());
  const IoResult partial = b->read_exact(buffer, deadline_after(50ms));
  CHECK(partial.status == IoStatus::timeout);
  CHECK(partial.bytes == 3);
}

TEST_CASE("a full pipe makes write time out with a partial count", "[pipe]") {
  auto [a, b] = make_pipe_pair("small", 10);
  const auto data = pattern_bytes(25, 3);
  const IoResult r = a->write(data, deadline_after(50ms));
  CHECK(r.status == IoStatus::timeout);
  CHECK(r.bytes == 10);
}

TEST_CASE("closing one end: the other reads what is queued, then closed", "[pipe]") {
  auto [a, b] = make_pipe_pair();
  const std::uint8_t bytes[] = {1, 2, 3};
  REQUIRE(a->write(bytes, deadline_after(1s)).ok());
  a->close();
  CHECK_FALSE(a->is_open());
  CHECK(a->write(bytes, deadline_after(1s)).status == IoStatus::closed);

  std::uint8_t buffer[8];
  CHECK(b->read_some(buffer, deadline_after(1s)).bytes == 3);
  const IoResult end = b->read_some(buffer, deadline_after(10s));
  CHECK(end.status == IoStatus::closed);
  CHECK_FALSE(b->is_open());
  CHECK(b->write(bytes, deadline_after(1s)).status == IoStatus::closed);
  a->close();  // idempotent
}

TEST_CASE("a write to an end whose peer is gone returns closed", "[pipe]") {
  auto [a, b] = make_pipe_pair();
  b.reset();
  const std::uint8_t bytes[] = {1};
  CHECK(a->write(bytes, deadline_after(10s)).status == IoStatus::closed);
}

TEST_CASE("close() from another thread wakes a blocked read", "[pipe]") {
  auto [a, b] = make_pipe_pair();
  IoResult result;
  std::thread reader([&] {
    std::uint8_t buffer[4];
    result = b->read_some(buffer, deadline_after(60s));
  });
  std::this_thread::sleep_for(50ms);
  const auto start = SteadyClock::now();
  b->close();
  reader.join();
  CHECK(result.status == IoStatus::closed);
  CHECK(SteadyClock::now() - start < 30s);  // generous bound: far less than the 60 s deadline
}

TEST_CASE("flush_input discards what has arrived", "[pipe]") {
  auto [a, b] = make_pipe_pair();
  const std::uint8_t stale[] = {9, 9, 9};
  const std::uint8_t fresh[] = {7};
  REQUIRE(a->write(stale, deadline_after(1s)).ok());
  b->flush_input();
  REQUIRE(a->write(fresh, deadline_after(1s)).ok());
  std::uint8_t buffer[8];
  const IoResult r = b->read_some(buffer, deadline_after(1s));
  REQUIRE(r.bytes == 1);
  CHECK(buffer[0] == 7);
}

TEST_CASE("the observer sees every byte both ways with timestamps", "[pipe][observer]") {
  auto [a, b] = make_pipe_pair("obs", 1000);
  auto observer = std::make_shared<RecordingObserver>();
  a->set_observer(observer);
  const auto before = IoTimestamp::now();
  const auto out = pattern_bytes(5000, 4);
  const auto in = pattern_bytes(3000, 5);
  const auto x = exchange_both_ways(*a, *b, out, in, deadline_after(10s));
  REQUIRE(x.a_write.ok());
  REQUIRE(x.a_read.ok());
  const auto after = IoTimestamp::now();

  const auto writes = observer->writes();
  const auto reads = observer->reads();
  CHECK(RecordingObserver::concat(writes) == out);
  CHECK(RecordingObserver::concat(reads) == in);
  CHECK(writes.size() > 1);  // capacity 1000 forces several partial writes, each reported
  for (const auto& chunks : {writes, reads}) {
    auto previous = before.steady;
    for (const auto& chunk : chunks) {
      CHECK_FALSE(chunk.bytes.empty());
      CHECK(chunk.when.steady >= previous);
      CHECK(chunk.when.steady <= after.steady);
      CHECK(chunk.when.system >= before.system - 1s);
      previous = chunk.when.steady;
    }
  }
  a->close();
  CHECK(observer->closes() == 1);

  // Removing the observer stops the tap.
  auto [c, d] = make_pipe_pair();
  auto quiet = std::make_shared<RecordingObserver>();
  c->set_observer(quiet);
  c->set_observer(nullptr);
  const std::uint8_t one[] = {1};
  REQUIRE(c->write(one, deadline_after(1s)).ok());
  CHECK(quiet->writes().empty());
}

TEST_CASE("make_pipe_pair refuses a zero capacity", "[pipe]") {
  CHECK_THROWS_AS(make_pipe_pair("z", 0), std::invalid_argument);
}

TEST_CASE("a drop seen by write still lets reads drain the peer's last bytes", "[pipe]") {
  auto [a, b] = make_pipe_pair();
  const std::uint8_t last_words[] = {1, 2, 3};
  REQUIRE(b->write(last_words, deadline_after(1s)).ok());
  b->close();
  CHECK(a->write(last_words, deadline_after(1s)).status == IoStatus::closed);
  CHECK_FALSE(a->is_open());
  std::uint8_t buffer[8];
  const IoResult drained = a->read_some(buffer, deadline_after(1s));
  CHECK(drained.ok());
  CHECK(drained.bytes == 3);
  CHECK(a->read_some(buffer, deadline_after(1s)).status == IoStatus::closed);
  CHECK(a->write(last_words, deadline_after(1s)).status == IoStatus::closed);
}
