// --record on `metaplast train` and `metaplast campaign run`: every frame to and from the board
// lands in a recording that `board replay` reads (instruments/frame_recorder.hpp).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "app/util/process.hpp"
#include "instruments/frame_recorder.hpp"
#include "tests/app/support/process.hpp"

namespace fs = std::filesystem;

namespace {

const std::string kMetaplast = METAPLAST_BINARY_DIR "/bin/metaplast";

metaplast::util::ProcessResult run(const std::vector<std::string>& argv) {
  metaplast::util::ProcessOptions options;
  options.timeout = std::chrono::minutes(9);
  return metaplast::util::run_process(argv, options);
}

// Frames host -> board and board -> host in the recording.
std::pair<std::size_t, std::size_t> frames_both_ways(const fs::path& file) {
  const auto recording = metaplast::instruments::load_recording(file);
  std::size_t to = 0, from = 0;
  for (const auto& f : recording.frames) {
    (f.direction == metaplast::instruments::FrameDirection::to_board ? to : from) += 1;
  }
  return {to, from};
}

}  // namespace

TEST_CASE("metaplast train --record: the board session's frames, both ways") {
  const fs::path dir = metaplast::test::scratch_path("metaplast-record", "train");
  fs::create_directories(dir);
  const fs::path frames = dir / "frames.jsonl";
  const auto r = run({kMetaplast, "train", "--tasks", "mnist", "--epochs", "1", "--train-limit",
                      "300", "--hidden", "16", "--threads", "1", "--device", "sim:?seed=1&formed=1",
                      "--out", (dir / "run").string(), "--record", frames.string()});
  INFO(r.out << r.err);
  REQUIRE(r.ok());
  const auto [to, from] = frames_both_ways(frames);
  CHECK(to > 10);
  CHECK(from == to);

  // Nothing to record without a board layer: said at once.
  const auto ideal = run({kMetaplast, "train", "--tasks", "mnist", "--epochs", "1", "--train-limit",
                          "300", "--out", (dir / "ideal").string(), "--record", frames.string()});
  CHECK(ideal.exit_code != 0);
  CHECK_THAT(ideal.err, Catch::Contains("--record") && Catch::Contains("no layer is on a board"));
  fs::remove_all(dir);
}

TEST_CASE("metaplast campaign run --record: one recording per step that opens a board") {
  const fs::path dir = metaplast::test::scratch_path("metaplast-record", "campaign");
  fs::create_directories(dir);
  std::ofstream(dir / "c.json") << R"({"campaign": "rec",
    "defaults": {"train": {"tasks": ["mnist"], "epochs": 1, "train-limit": 300, "hidden": [16],
                           "threads": 1}},
    "steps": [
      {"id": "char", "type": "characterize", "device": "sim:?seed=7&formed=1",
       "cells": 20, "cycles": 2, "read_repeats": 0, "read_cells": 0},
      {"id": "t", "type": "train", "placement": "ideal,board", "device": "sim:?seed=2&formed=1"},
      {"id": "soft", "type": "train"}]})";
  const auto r = run({kMetaplast, "campaign", "run", (dir / "c.json").string(), "--out",
                      (dir / "run").string(), "--record", "--quiet"});
  INFO(r.out << r.err);
  REQUIRE(r.ok());
  for (const char* step : {"char", "t"}) {
    INFO(step);
    const auto [to, from] = frames_both_ways(dir / "run" / "steps" / step / "frames-1.jsonl");
    CHECK(to > 3);
    CHECK(from == to);
  }
  CHECK_FALSE(fs::exists(dir / "run" / "steps" / "soft" / "frames-1.jsonl"));
  fs::remove_all(dir);
}
