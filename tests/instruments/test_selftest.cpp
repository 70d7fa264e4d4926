// `metaplast board selftest`: the conformance checks pass against the simulated board, with and
// without the program-and-verify capability, in-process and over TCP.
#include <catch2/catch.hpp>

#include "instruments/board_selftest.hpp"
#include "sim_boards.hpp"

using namespace metaplast::instruments;
using namespace metaplast::testing;

namespace {

void check_all_pass(const std::string& address, bool watchdog) {
  ArrayBoard board(address);
  board.open();
  SelftestOptions options;
  options.check_watchdog = watchdog;
  const auto checks = run_selftest(board, options);
  CHECK(checks.size() >= (watchdog ? 10u : 9u));
  for (const auto& c : checks) {
    INFO(c.name << ": " << c.detail);
    CHECK(c.passed);
  }
  CHECK(board.state() == BoardState::safe);
}

}  // namespace

TEST_CASE("selftest passes against the simulated board") {
  check_all_pass(sim_address(61), true);
  check_all_pass(sim_address(62, "&program_verify=0"), false);
  TcpSimBoard tcp(sim_options(63));
  check_all_pass(tcp.address(), false);
}

TEST_CASE("selftest on an unformed probe cell: the refusal is cached and nothing is pulsed") {
  // RESET on a pristine cell is answered not_formed; the repetition must get the same cached
  // reply and the counters must not move.
  ArrayBoard board(sim_address(64).replace(sim_address(64).find("&formed=1"), 9, ""));
  board.open();
  const auto checks = run_selftest(board, SelftestOptions{{5, 5}, false});
  bool saw_repeat = false;
  for (const auto& c : checks) {
    if (c.name.find("repeated sequence") != std::string::npos) {
      saw_repeat = true;
      CHECK(c.passed);
      CHECK(c.detail.find("not_formed") != std::string::npos);
    }
  }
  CHECK(saw_repeat);
}
