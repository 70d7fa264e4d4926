// A recording TransportObserver for the drivers tests: keeps every byte and timestamp both ways.
#pragma once

#include <mutex>
#include <vector>

#include "drivers/transport.hpp"

namespace metaplast::drivers::testing {

class RecordingObserver final : public TransportObserver {
 public:
  struct Chunk {
    std::vector<std::uint8_t> bytes;
    IoTimestamp when;
  };

  void on_write(std::span<const std::uint8_t> bytes, const IoTimestamp& when) override {
    std::lock_guard lock(mutex_);
    writes_.push_back({{bytes.begin(), bytes.end()}, when});
  }
  void on_read(std::span<const std::uint8_t> bytes, const IoTimestamp& when) override {
    std::lock_guard lock(mutex_);
    reads_.push_back({{bytes.begin(), bytes.end()}, when});
  }
  void on_close(const IoTimestamp&) override {
    std::lock_guard lock(mutex_);
    ++closes_;
  }

  std::vector<Chunk> writes() const {
    std::lock_guard lock(mutex_);
    return writes_;
  }
  std::vector<Chunk> reads() const {
    std::lock_guard lock(mutex_);
    return reads_;
  }
  int closes() const {
    std::lock_guard lock(mutex_);
    return closes_;
  }
  static std::vector<std::uint8_t> concat(const std::vector<Chunk>& chunks) {
    std::vector<std::uint8_t> out;
    for (const auto& c : chunks) out.insert(out.end(), c.bytes.begin(), c.bytes.end());
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Chunk> writes_, reads_;
  int closes_ = 0;
};

// Deterministic test payload: a byte pattern that is not periodic in 256.
inline std::vector<std::uint8_t> pattern_bytes(std::size_t n, std::uint32_t seed) {
  std::vector<std::uint8_t> out(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<std::uint8_t>(x);
  }
  return out;
}

}  // namespace metaplast::drivers::testing

#include <thread>

namespace metaplast::drivers::testing {

// Sends `a_to_b` from a to b and `b_to_a` from b to a at the same time (four threads' worth of
// work: two writers, two readers), so neither side can deadlock on full buffers.
struct Exchange {
  IoResult a_write, b_write, a_read, b_read;
  std::vector<std::uint8_t> received_by_a, received_by_b;
};

inline Exchange exchange_both_ways(Transport& a, Transport& b,
                                   const std::vector<std::uint8_t>& a_to_b,
                                   const std::vector<std::uint8_t>& b_to_a, Deadline deadline) {
  Exchange x;
  x.received_by_b.resize(a_to_b.size());
  x.received_by_a.resize(b_to_a.size());
  std::thread a_writer([&] { x.a_write = a.write(a_to_b, deadline); });
  std::thread b_writer([&] { x.b_write = b.write(b_to_a, deadline); });
  std::thread b_reader([&] { x.b_read = b.read_exact(x.received_by_b, deadline); });
  x.a_read = a.read_exact(x.received_by_a, deadline);
  a_writer.join();
  b_writer.join();
  b_reader.join();
  return x;
}

}  // namespace metaplast::drivers::testing
