// common/byte_io, the one binary writer and reader of the product: values written and read back
// are the same bytes, and every failure (a read past the end, a count larger than the bytes left
// can hold) reaches the caller's error function with where it happened, nothing read on.
#include <bit>
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/byte_io.hpp"

using metaplast::common::ByteReader;
using metaplast::common::ByteReadError;
using metaplast::common::ByteWriter;
using Kind = ByteReadError::Kind;

namespace {

// What the tests' error function throws: the error as the reader reported it.
struct Refused {
  ByteReadError error;
};

ByteReader reader_of(std::string_view bytes) {
  return ByteReader(bytes, [](const ByteReadError& error) { throw Refused{error}; });
}

// The error `read` was refused with.
template <class Read>
ByteReadError refusal(Read read) {
  try {
    read();
  } catch (const Refused& refused) {
    return refused.error;
  }
  FAIL("the read was not refused");
  return {};
}

struct Pair {
  std::uint16_t first;
  std::int16_t second;
};

}  // namespace

TEST_CASE("POD values, element arrays and raw bytes read back as written", "[byte_io]") {
  const std::vector<float> floats = {0.5f, -2.0f, 1e-30f};
  const std::vector<std::uint32_t> none;
  ByteWriter w;
  w.pod(std::uint8_t{0xab});
  w.pod(std::int32_t{-7});
  w.pod(std::uint64_t{0x0123456789abcdefull});
  w.pod(3.25);
  w.pod(-1.5f);
  w.pod(Pair{513, -2});
  w.pod<std::uint64_t>(floats.size());
  w.pods(floats);
  w.pods(none);  // nothing (and no memcpy from an empty vector's null data())
  w.raw(std::string_view("text"));
  w.raw(nullptr, 0);
  const std::string& bytes = w.bytes();
  REQUIRE(bytes.size() == 1 + 4 + 8 + 8 + 4 + 4 + 8 + 3 * 4 + 4);
  // The host's own bytes, nothing added between values.
  if constexpr (std::endian::native == std::endian::little) {
    CHECK(bytes.substr(0, 5) == std::string("\xab\xf9\xff\xff\xff", 5));
    CHECK(bytes.substr(5, 8) == std::string("\xef\xcd\xab\x89\x67\x45\x23\x01", 8));
  }
  CHECK(bytes.substr(bytes.size() - 4) == "text");

  ByteReader r = reader_of(bytes);
  CHECK(r.remaining() == bytes.size());
  CHECK(r.pod<std::uint8_t>() == 0xab);
  CHECK(r.pod<std::int32_t>() == -7);
  CHECK(r.pod<std::uint64_t>() == 0x0123456789abcdefull);
  CHECK(r.pod<double>() == 3.25);
  CHECK(r.pod<float>() == -1.5f);
  const auto pair = r.pod<Pair>();
  CHECK(pair.first == 513);
  CHECK(pair.second == -2);
  CHECK(r.offset() == 29);
  const std::size_t n = r.count(sizeof(float));
  CHECK(n == 3);
  CHECK(r.pods<float>(n) == floats);
  CHECK(r.pods<std::uint32_t>(0).empty());
  CHECK(r.raw(0).empty());
  CHECK_FALSE(r.at_end());
  CHECK(r.remaining() == 4);
  CHECK(r.raw(4) == "text");
  CHECK(r.at_end());
  CHECK(r.remaining() == 0);
  CHECK(r.offset() == bytes.size());
}

TEST_CASE("a read past the end goes to the error function with its offset", "[byte_io]") {
  const std::string bytes = "0123456789";
  ByteReader r = reader_of(bytes);
  r.pod<std::uint64_t>();
  SECTION("a value") {
    const ByteReadError e = refusal([&] { r.pod<std::uint32_t>(); });
    CHECK(e.kind == Kind::truncated);
    CHECK(e.offset == 8);
  }
  SECTION("raw bytes") {
    CHECK(refusal([&] { r.raw(3); }).offset == 8);
  }
  SECTION("elements") {
    CHECK(refusal([&] { r.pods<std::uint16_t>(2); }).offset == 8);
    // A count whose byte size would overflow is refused as well, nothing allocated.
    const auto huge = std::numeric_limits<std::size_t>::max() / 4 + 1;
    CHECK(refusal([&] { r.pods<std::uint64_t>(huge); }).kind == Kind::truncated);
  }
  SECTION("a count") {
    const std::string four = bytes.substr(0, 4);  // outlives the reader, which does not copy
    ByteReader short_count = reader_of(four);
    const ByteReadError e = refusal([&] { short_count.count(); });
    CHECK(e.kind == Kind::truncated);
    CHECK(e.offset == 0);
  }
  // A refused read takes nothing: the reader stays where it was.
  CHECK(r.offset() == 8);
  CHECK(r.remaining() == 2);
  CHECK(r.raw(2) == "89");
  CHECK(r.at_end());
  CHECK(refusal([&] { r.pod<char>(); }).offset == 10);
}

TEST_CASE("an empty input: at the end, and any read refused at byte 0", "[byte_io]") {
  ByteReader r = reader_of("");
  CHECK(r.at_end());
  CHECK(r.remaining() == 0);
  CHECK(r.raw(0).empty());
  CHECK(r.pods<double>(0).empty());
  const ByteReadError e = refusal([&] { r.pod<char>(); });
  CHECK(e.kind == Kind::truncated);
  CHECK(e.offset == 0);
}

TEST_CASE("a count larger than the bytes left allow is refused, with the count and its offset",
          "[byte_io]") {
  ByteWriter w;
  w.raw(std::string_view("ab"));
  w.pod<std::uint64_t>(3);
  w.pods(std::vector<std::uint32_t>{1, 2, 3});
  ByteReader r = reader_of(w.bytes());
  r.raw(2);
  SECTION("three elements of 4 bytes fit in 12 bytes") { CHECK(r.count(4) == 3); }
  SECTION("three of 5 bytes do not") {
    const ByteReadError e = refusal([&] { r.count(5); });
    CHECK(e.kind == Kind::count_too_large);
    CHECK(e.offset == 2);
    CHECK(e.count == 3);
  }
  SECTION("a huge count, as in a damaged file") {
    ByteWriter huge;
    huge.pod(std::uint64_t{1} << 60);
    ByteReader h = reader_of(huge.bytes());
    const ByteReadError e = refusal([&] { h.count(); });
    CHECK(e.kind == Kind::count_too_large);
    CHECK(e.count == std::uint64_t{1} << 60);
  }
  SECTION("a count of another width") {
    ByteWriter narrow;
    narrow.pod(std::uint32_t{2});
    narrow.raw(std::string_view("xy"));
    ByteReader n = reader_of(narrow.bytes());
    CHECK(n.count<std::uint32_t>() == 2);
    CHECK(n.raw(2) == "xy");
    const std::string one_byte_short = narrow.bytes().substr(0, 5);
    ByteReader too_many = reader_of(one_byte_short);
    const ByteReadError e = refusal([&] { too_many.count<std::uint32_t>(); });
    CHECK(e.kind == Kind::count_too_large);
    CHECK(e.offset == 0);
    CHECK(e.count == 2);
  }
}

TEST_CASE("an error function that returns does not let the reader go on", "[byte_io]") {
  int calls = 0;
  ByteReader r("abc", [&calls](const ByteReadError&) { ++calls; });
  CHECK_THROWS_AS(r.pod<std::uint32_t>(), std::logic_error);
  CHECK(calls == 1);
  CHECK(r.offset() == 0);
}
