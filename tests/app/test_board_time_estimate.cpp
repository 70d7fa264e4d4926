// The bench-time estimate (app/hil/board_time_estimate.hpp): known counts for a known model, the
// frame sizes of docs/protocol.md, the shape of a training configuration, `campaign check`'s
// lines for a board step, and a short board-store training on a metaplast-simboard process whose
// device clock (GET_STATUS uptime_ms), pulse counters and request count agree with the estimate
// made from the same run's statistics.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "app/campaign/campaign.hpp"
#include "app/hil/board_time_estimate.hpp"
#include "app/hil/journal.hpp"
#include "app/hil/training_run.hpp"
#include "app/learning/dataset.hpp"
#include "instruments/array_board.hpp"
#include "tests/app/support/process.hpp"
#include "tests/app/support/simboard_process.hpp"

using namespace metaplast;
namespace fs = std::filesystem;
using Catch::Matchers::WithinRel;

namespace {

// One board layer of 5,120 devices (the paper's output layer), 600 steps, one epoch.
hil::BoardTrainingShape output_layer_shape() {
  hil::BoardTrainingShape shape;
  shape.board_layer_devices = {5120};
  shape.steps = 600;
  shape.first_epoch_steps = 600;
  shape.epochs = 1;
  return shape;
}

hil::LevelChangeModel known_model() {
  hil::LevelChangeModel m;
  m.first_epoch = {0.01, 1.0, 0.0, 2.0};  // 51.2 devices per step, every step, 2 pulses each
  m.later_epochs = {0.001, 0.5, 0.0, 4.0};
  m.initial_pulses_per_write = 3;
  return m;
}

}  // namespace

TEST_CASE("the estimate counts the requests, bytes and operations the host sends") {
  const hil::BoardWork w = hil::estimate_board_training(output_layer_shape(), known_model());
  // Pulses: initial 5,120 x 3, training 600 x 51.2 x 2. Reads: one more than pulses per write,
  // and the epoch's snapshot of the 5,120 cells.
  CHECK_THAT(w.pulses, WithinRel(5120.0 * 3 + 600 * 51.2 * 2, 1e-12));
  CHECK_THAT(w.reads, WithinRel(5120.0 * 4 + 600 * 51.2 * 3 + 5120, 1e-12));
  // Requests: 8 initial chunks of 640, one per step, 3 READs of 2,048 cells, 2 x 41
  // READ_COUNTERS of 400 cells, and the session's IDENTIFY, SET_LEVELS, CONFIGURE, WATCHDOG_ARM
  // and SAFE_STATE.
  CHECK(w.requests == 8 + 600 + 3 + 82 + 5);
  CHECK(w.array_requests == 8 + 600 + 3);
  // Frames (docs/protocol.md 2, 4.5-4.7): PROGRAM_VERIFY 14 + 19 + 6n out, 14 + 15 + 3n back;
  // READ of a list 14 + 7 + 2n out, 14 + 10 + 2n back; READ_COUNTERS of the array 14 + 13 out,
  // 14 + 9 + 10n back.
  const double pv = 8 * 62 + 5120 * 9 + 600 * (62 + 51.2 * 9);
  const double read = 3 * 45 + 5120 * 4;
  const double counters = 2 * (41 * 50 + 16384 * 10);
  // IDENTIFY 14 out, 234 back (9 levels, 4 TIA ranges, the simulated board's strings); SET_LEVELS
  // 15 and 110; CONFIGURE 39 and 19; WATCHDOG_ARM 18 and 19; SAFE_STATE 14 and 19.
  const double session = 14 + 234 + 15 + 110 + 39 + 19 + 18 + 19 + 14 + 19;
  CHECK_THAT(w.bytes, WithinRel(pv + read + counters + session, 1e-12));
  CHECK_THAT(w.array_bytes, WithinRel(pv + read, 1e-12));
  // Board time (devices::TimingModel): 20 us per array request, 1.3 us per 100 ns pulse,
  // 8.2 us per read.
  CHECK_THAT(w.board_ns, WithinRel(611 * 20e3 + w.pulses * 1300 + w.reads * 8200, 1e-12));
  // Link: the bytes at 92,160 bytes/s over the UART; 100 us per request plus 12.5 MB/s on TCP.
  CHECK_THAT(w.link_ns(devices::LinkModel::uart()), WithinRel(w.bytes / 92160 * 1e9, 1e-12));
  CHECK_THAT(w.link_ns(devices::LinkModel::tcp()),
             WithinRel(w.requests * 100e3 + w.bytes / 12.5e6 * 1e9, 1e-12));
  CHECK_THAT(w.sim_clock_ns(devices::TimingModel{}),
             WithinRel(w.board_ns + w.array_bytes / 92160 * 1e9, 1e-12));
}

TEST_CASE("program-and-verify frames match docs/protocol.md's wire-efficiency table") {
  // 1,000 cells: 640 + 360 entries, 9,124 bytes on the wire.
  hil::BoardWorkCounter count;
  count.program_and_verify(1, 1000, 0);
  CHECK(count.work().requests == 2);
  CHECK(count.work().bytes == 9124);
}

TEST_CASE("an unformed cell costs its refused chunk's request, and no device time") {
  hil::LevelChangeModel model = known_model();
  const auto without = hil::estimate_board_training(output_layer_shape(), model);
  model.unformed_fraction = 2.0 / 5120;
  const auto with = hil::estimate_board_training(output_layer_shape(), model);
  CHECK(with.requests == without.requests + 2);
  // A 640-entry PROGRAM_VERIFY frame (14 + 19 + 6 x 640) and the 14 + 9-byte refusal.
  CHECK(with.bytes == without.bytes + 2 * (3873 + 23));
  CHECK(with.board_ns == without.board_ns);
  CHECK(with.sim_clock_ns(devices::TimingModel{}) == without.sim_clock_ns(devices::TimingModel{}));
}

TEST_CASE("later epochs are counted with the later epochs' level changes") {
  // A second epoch: half its steps program 10.24 devices (5.12 a step on average) at 4 pulses.
  auto shape = output_layer_shape();
  shape.steps = 1200;
  shape.epochs = 2;
  const auto w = hil::estimate_board_training(shape, known_model());
  CHECK(w.array_requests == 8 + 600 + 300 + 2 * 3);
  CHECK_THAT(w.pulses, WithinRel(5120.0 * 3 + 600 * 51.2 * 2 + 300 * 10.24 * 4, 1e-12));
  CHECK_THAT(w.reads, WithinRel(5120.0 * 4 + 600 * 51.2 * 3 + 300 * 10.24 * 5 + 2 * 5120, 1e-12));
}

TEST_CASE("a training configuration gives the board layers, steps and epochs the trainer runs") {
  CHECK(hil::steps_per_epoch(60000, 100) == 600);
  CHECK(hil::steps_per_epoch(1000, 100) == 10);
  CHECK(hil::steps_per_epoch(5, 2) == 2);  // 2 + 2 images; the fifth alone is no batch
  learning::TrainConfig c;
  c.epochs = 50;
  c.placement = "virtual,virtual,board";
  auto shape = hil::board_training_shape(c);
  CHECK(shape.board_layer_devices == std::vector<std::size_t>{5120});
  CHECK(shape.epochs == 100);
  CHECK(shape.steps == 100 * 600);
  CHECK(shape.first_epoch_steps == 600);
  c.hidden = {20};
  c.placement = "board";
  c.mapping = "differential";
  c.train_limit = 1000;
  c.validation = 0.1;
  c.reread_every = 7;
  instruments::BoardSettings settings;
  settings.set_pulse_width_ns = 100;
  settings.reset_pulse_width_ns = 300;
  shape = hil::board_training_shape(c, settings);
  CHECK(shape.board_layer_devices == std::vector<std::size_t>{2 * 784 * 20, 2 * 20 * 10});
  CHECK(shape.steps == 100 * 9);  // 900 images a task
  CHECK(shape.reread_every == 7);
  CHECK(shape.pulse_width_ns == 200);
  c.placement = "virtual";
  CHECK(hil::board_training_shape(c).board_layer_devices.empty());
}

TEST_CASE("campaign check prints the board and link time of every board-store train step") {
  const auto paper = campaign::load_campaign(METAPLAST_SOURCE_DIR "/campaigns/paper.json");
  // Found by id: the Fig. 2a sweep before it may change its m* values.
  std::size_t at = 0;
  while (at < paper.steps.size() && paper.steps[at].id != "fig5a/seed=1") ++at;
  REQUIRE(at < paper.steps.size());
  const auto& hybrid = paper.steps[at];
  CHECK(hybrid.board_store);
  CHECK(hybrid.device_operations > 0);
  CHECK(hybrid.device_seconds > 0);
  CHECK(hybrid.link_seconds_uart > hybrid.link_seconds_tcp);
  const auto& ideal = paper.steps[1];  // fig2a/mstar=0: every layer ideal
  CHECK_FALSE(ideal.board_store);
  CHECK(ideal.device_operations == 0);
  // The step's numbers are the estimator's for its shape under the stated model.
  learning::TrainConfig c;
  c.epochs = 50;
  c.placement = "virtual,virtual,board";
  const auto work =
      hil::estimate_board_training(hil::board_training_shape(c), hil::stated_level_change_model());
  CHECK_THAT(hybrid.device_operations, WithinRel(work.operations(), 1e-12));
  CHECK_THAT(hybrid.link_seconds_uart,
             WithinRel(work.link_ns(devices::LinkModel::uart()) * 1e-9, 1e-12));

  const std::string plan = campaign::format_plan(paper);
  CHECK_THAT(plan, !Catch::Contains("not estimated"));
  CHECK_THAT(plan, Catch::Contains("device operations, board time ") &&
                       Catch::Contains("link time: UART ") &&
                       Catch::Contains("(board store, stated model"));
  // 15 repeats of fig5a and fig5b.
  CHECK_THAT(plan, Catch::Contains("board-store train steps: 16, link time ~"));
  const auto fig5a = campaign::estimate_totals(paper, "fig5a");
  CHECK(fig5a.steps == 15);
  CHECK(fig5a.board_steps == 15);
  CHECK_THAT(fig5a.link_seconds_uart, WithinRel(15 * hybrid.link_seconds_uart, 1e-12));
  const auto json = campaign::plan_json(paper);
  CHECK(json["steps"][at]["estimate"]["board_store"] == true);
  CHECK(json["steps"][at]["estimate"]["link_seconds"]["uart"].get<double>() ==
        hybrid.link_seconds_uart);
}

TEST_CASE(
    "a short board-store training takes the device time and pulses estimated from its "
    "statistics",
    "[hil]") {
  const fs::path base = test::scratch_path("metaplast-board-time", "run");
  const fs::path dir = base / "run";
  fs::create_directories(base);
  test::SimboardProcess board(test::SimboardProcess::Link::tcp, base / "simboard.log",
                              {"--formed", "--seed", "6"});
  learning::TrainConfig c;
  c.tasks = {"mnist", "fashion"};
  c.epochs = 1;
  c.hidden = {20};
  c.train_limit = 1000;
  c.threads = 2;
  c.seed = 3;
  c.data_dir = learning::default_data_dir();
  c.placement = "board";  // 15,880 cells
  c.device = board.address();
  c.chips_dir = base / "chips";
  hil::run_training(c, dir, false);

  instruments::ArrayBoard probe(board.address());
  probe.open();
  const double device_clock_ns = probe.uptime_ms() * 1e6;  // since the process booted the board
  probe.close();
  // The board's own SET + RESET counters at the run's start and end, and the requests the host
  // sent (journal.jsonl, docs/run-records.md).
  std::uint64_t pulses = 0, requests = 0;
  for (const auto& r : hil::JournalFile::read(dir / hil::kJournalFile)) {
    if (r.value("type", "") == "start") {
      for (const auto& n : r["counters_start"]) pulses -= n.get<std::uint64_t>();
    }
    if (r.value("type", "") == "end") {
      for (const auto& n : r["counters_end"]) pulses += n.get<std::uint64_t>();
      requests = r["requests_sent"].get<std::uint64_t>();
    }
  }

  const hil::LevelChangeModel model = hil::level_change_model_from_run(dir);
  CHECK(model.first_epoch.changed_fraction > 0);
  CHECK(model.later_epochs.pulses_per_write > 0);
  const hil::BoardWork estimate = hil::estimate_board_training(hil::board_training_shape(c), model);
  const double estimated_ns = estimate.sim_clock_ns(devices::TimingModel{});
  INFO("device clock " << device_clock_ns * 1e-9 << " s, estimated " << estimated_ns * 1e-9
                       << " s; pulses " << pulses << ", estimated " << estimate.pulses
                       << "; requests " << requests << ", estimated " << estimate.requests);
  CHECK_THAT(estimated_ns, WithinRel(device_clock_ns, 0.2));
  CHECK_THAT(estimate.pulses, WithinRel(static_cast<double>(pulses), 0.2));
  CHECK_THAT(estimate.requests, WithinRel(static_cast<double>(requests), 0.2));

  // A batch record without its lists (a journal edited or cut by hand) is refused naming the
  // journal, not with a bare JSON error.
  std::ofstream(dir / hil::kJournalFile, std::ios::app)
      << R"({"type": "batch", "phase": "train", "task": "mnist", "epoch": 1})"
      << "\n";
  try {
    hil::level_change_model_from_run(dir);
    FAIL("no error");
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(), Catch::Contains((dir / hil::kJournalFile).string()) &&
                             Catch::Contains("without its cells, pulses or passed lists"));
  }
  fs::remove_all(base);
}

TEST_CASE("campaign check refuses a placement that does not fit the network, naming the step") {
  try {
    campaign::parse_campaign(nlohmann::json::parse(R"({"campaign": "c", "steps": [
      {"type": "train", "placement": "virtual,board"}]})"),
                             "camp.json");
    FAIL("no error");
  } catch (const campaign::CampaignError& e) {
    CHECK_THAT(e.what(), Catch::Contains("camp.json: /steps/0") &&
                             Catch::Contains("--placement virtual,board") &&
                             Catch::Contains("3 layers"));
  }
}

TEST_CASE("a pilot folder without a board run is refused naming it") {
  const fs::path dir = test::scratch_path("metaplast-board-time", "not-a-run");
  fs::create_directories(dir);
  try {
    hil::level_change_model_from_run(dir);
    FAIL("no error");
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(), Catch::Contains(dir.string()) && Catch::Contains("config.json"));
  }
  fs::remove_all(dir);
}
