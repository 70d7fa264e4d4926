#include <atomic>
#include <catch2/catch.hpp>
#include <cstddef>
#include <vector>

#include "app/util/thread_pool.hpp"

using metaplast::util::parallel_ranges;

TEST_CASE("parallel_ranges covers every index exactly once, in contiguous static ranges") {
  for (int threads : {1, 2, 3, 5}) {
    for (std::size_t count :
         {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{1000}}) {
      std::vector<std::atomic<int>> hits(count);
      std::atomic<int> calls{0};
      parallel_ranges(count, threads, [&](std::size_t begin, std::size_t end) {
        REQUIRE(begin <= end);
        for (std::size_t i = begin; i < end; ++i) hits[i].fetch_add(1);
        calls.fetch_add(1);
      });
      for (std::size_t i = 0; i < count; ++i) REQUIRE(hits[i].load() == 1);
      const std::size_t expected_calls =
          count <= 1 ? 1 : std::min<std::size_t>(static_cast<std::size_t>(threads), count);
      REQUIRE(static_cast<std::size_t>(calls.load()) == expected_calls);
    }
  }
}

TEST_CASE("parallel_ranges survives many back-to-back jobs with changing thread counts") {
  // A lost wake-up would hang here (a worker created or woken late must still see its job).
  std::size_t total = 0;
  for (int round = 0; round < 3000; ++round) {
    const int threads = 1 + round % 3;
    std::atomic<std::size_t> sum{0};
    parallel_ranges(64, threads, [&](std::size_t begin, std::size_t end) {
      std::size_t local = 0;
      for (std::size_t i = begin; i < end; ++i) local += i;
      sum.fetch_add(local);
    });
    REQUIRE(sum.load() == 64 * 63 / 2);
    total += sum.load();
  }
  REQUIRE(total == std::size_t{3000} * (64 * 63 / 2));
}

TEST_CASE("the compute thread count is clamped to at least one") {
  metaplast::util::set_compute_threads(0);
  REQUIRE(metaplast::util::compute_threads() == 1);
  metaplast::util::set_compute_threads(2);
  REQUIRE(metaplast::util::compute_threads() == 2);
  metaplast::util::set_compute_threads(1);
}
