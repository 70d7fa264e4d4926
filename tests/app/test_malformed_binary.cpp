// The malformed-input matrix of the binary files (issue 19): every kind of binary file a run
// reads (IDX images, IDX labels, checkpoint.bin, the simulated chip's state file) x every class
// of fault (empty, truncated at several points, flipped bytes, wrong magic or version, huge
// claimed sizes, trailing garbage). Each must be refused with the loader's documented exception,
// a message naming the file and saying what is wrong: no crash, no silent accept.
//
// Not in the matrix: a flipped pixel or a label changed to another class 0..9 inside an IDX
// file. IDX has no checksum, so such a file is a valid dataset; the run records the files'
// SHA-256 in config.json (docs/run-records.md).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "app/hil/training_run.hpp"
#include "app/learning/checkpoint.hpp"
#include "app/learning/dataset.hpp"
#include "app/learning/network.hpp"
#include "app/learning/trainer.hpp"
#include "protocols/frame.hpp"
#include "sim/chip.hpp"
#include "tests/app/support/process.hpp"

namespace devices = metaplast::devices;
namespace fs = std::filesystem;
namespace learning = metaplast::learning;
namespace sim = metaplast::sim;

namespace {

constexpr std::uint64_t kConfigHash = 0x1234;

void write_bytes(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void put_be32(std::string& bytes, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(char(value >> shift));
}

template <typename T>
void put_le(std::string& bytes, const T& value) {
  bytes.append(reinterpret_cast<const char*>(&value), sizeof value);
}

std::string idx_images(std::uint32_t count, std::uint32_t rows, std::uint32_t cols) {
  std::string bytes;
  put_be32(bytes, 2051);
  put_be32(bytes, count);
  put_be32(bytes, rows);
  put_be32(bytes, cols);
  for (std::uint32_t i = 0; i < count * rows * cols; ++i) bytes.push_back(char(i * 7));
  return bytes;
}

std::string idx_labels(std::uint32_t count) {
  std::string bytes;
  put_be32(bytes, 2049);
  put_be32(bytes, count);
  for (std::uint32_t i = 0; i < count; ++i) bytes.push_back(char(i % 10));
  return bytes;
}

// A network of 4 inputs, 3 hidden units and 10 outputs, and a state that fits it.
learning::Network small_network() {
  learning::NetworkConfig config;
  config.inputs = 4;
  config.hidden = {3};
  return learning::Network(config, learning::Quantizer::uniform(), 1);
}

learning::TrainingState small_state(const learning::Network& network) {
  learning::TrainingState state;
  state.task_index = 0;
  state.epochs_done = 1;
  state.rng_state = "1 2 3";
  for (const auto& layer : network.layers()) {
    state.hidden_weights.push_back(layer.hidden);
    state.live_batchnorm.push_back(layer.batchnorm);
  }
  state.saved_batchnorm.resize(2);
  state.metrics.push_back({"mnist", 1, "mnist", "test", 0.5, 1.25});
  return state;
}

// A checkpoint file around `payload`, with the checksum of format version 3 (checkpoint.hpp).
std::string framed_checkpoint(const std::string& payload) {
  std::string bytes("MPLCKPT", 8);
  put_le(bytes, std::uint32_t{3});
  put_le(bytes, kConfigHash);
  put_le(bytes, static_cast<std::uint64_t>(payload.size()));
  put_le(bytes, learning::fnv1a64(payload, learning::fnv1a64(bytes)));
  return bytes + payload;
}

// One kind of binary file: a valid example, how to load it, its exception's message on failure.
struct FileKind {
  std::string name;
  fs::path file;
  std::string valid;
  std::function<void()> load;
};

// Loads `bytes` as `kind`; returns the error message ("" when it was accepted).
std::string refusal(const FileKind& kind, const std::string& bytes) {
  write_bytes(kind.file, bytes);
  std::string message;
  try {
    kind.load();
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  write_bytes(kind.file, kind.valid);  // IDX files come in pairs: the other one stays valid
  return message;
}

void check_refused(const FileKind& kind, const std::string& bytes, const std::string& fault,
                   const std::vector<std::string>& reasons) {
  const std::string message = refusal(kind, bytes);
  INFO(kind.name << ", " << fault << ": " << (message.empty() ? "accepted" : message));
  REQUIRE_FALSE(message.empty());
  CHECK_THAT(message, Catch::Contains(kind.file.string()));
  bool says_what = false;
  for (const std::string& reason : reasons)
    says_what = says_what || message.find(reason) != std::string::npos;
  CHECK(says_what);
}

struct Scratch {
  fs::path dir = metaplast::test::scratch_path("metaplast-test", "malformed_binary");
  Scratch() { fs::create_directories(dir); }
  ~Scratch() { fs::remove_all(dir); }
};

std::vector<FileKind> file_kinds(const fs::path& dir) {
  std::vector<FileKind> kinds;
  const fs::path images = dir / "t10k-images-idx3-ubyte";
  const fs::path labels = dir / "t10k-labels-idx1-ubyte";
  write_bytes(images, idx_images(5, 4, 3));
  write_bytes(labels, idx_labels(5));
  kinds.push_back(
      {"IDX images", images, idx_images(5, 4, 3), [=] { learning::load_idx(images, labels); }});
  kinds.push_back(
      {"IDX labels", labels, idx_labels(5), [=] { learning::load_idx(images, labels); }});

  const fs::path checkpoint = dir / "checkpoint.bin";
  learning::save_checkpoint(checkpoint, kConfigHash, small_state(small_network()));
  kinds.push_back({"checkpoint", checkpoint, metaplast::test::read_file(checkpoint),
                   [=] { learning::load_checkpoint(checkpoint, kConfigHash); }});

  const fs::path state = dir / "chip.state";
  sim::Chip(devices::DeviceModel(devices::Calibration::defaults()), 9).save(state);
  kinds.push_back(
      {"sim state", state, metaplast::test::read_file(state), [=] { sim::Chip::load(state); }});
  return kinds;
}

}  // namespace

TEST_CASE("every binary file kind x every class of fault: a clear refusal naming the file",
          "[malformed]") {
  Scratch scratch;
  const std::vector<std::string> damaged = {"truncated", "too long",  "checksum", "count mismatch",
                                            "corrupt",   "bad magic", "no items"};
  for (const FileKind& kind : file_kinds(scratch.dir)) {
    const std::string& valid = kind.valid;
    REQUIRE(refusal(kind, valid).empty());

    check_refused(kind, "", "empty", {"truncated"});
    for (std::size_t cut :
         {std::size_t{1}, std::size_t{7}, std::size_t{12}, valid.size() / 2, valid.size() - 1}) {
      check_refused(kind, valid.substr(0, cut), "truncated to " + std::to_string(cut), damaged);
    }
    check_refused(kind, valid + "garbage", "trailing garbage",
                  {"too long", "trailing", "checksum", "corrupt"});
    std::string magic = valid;
    magic[1] ^= 0x5a;
    check_refused(kind, magic, "wrong magic", {"magic"});
  }
}

TEST_CASE("a flipped byte anywhere in a checkpoint or a state file is refused", "[malformed]") {
  Scratch scratch;
  for (const FileKind& kind : file_kinds(scratch.dir)) {
    if (kind.name.rfind("IDX", 0) == 0) continue;  // no checksum: header flips below
    const std::string& valid = kind.valid;
    // Every byte of the small checkpoint; the header and a spread of cells of the state file.
    const std::size_t stride = valid.size() > 100000 ? 16411 : 1;
    for (std::size_t at = 0; at < valid.size(); at += at < 100 ? 1 : stride) {
      std::string flipped = valid;
      flipped[at] ^= 0x04;
      check_refused(kind, flipped, "byte " + std::to_string(at) + " flipped",
                    {"checksum", "magic", "format version", "truncated"});
    }
  }
}

TEST_CASE("IDX headers: wrong version, zero, huge and inconsistent sizes are refused",
          "[malformed]") {
  Scratch scratch;
  const auto kinds = file_kinds(scratch.dir);
  const FileKind& images = kinds[0];
  const FileKind& labels = kinds[1];
  auto with_header = [](std::string bytes, std::size_t word, std::uint32_t value) {
    std::string be;
    put_be32(be, value);
    bytes.replace(4 * word, 4, be);
    return bytes;
  };
  // Magic 2051 says "unsigned bytes, 3 dimensions"; 2052 would be 4 dimensions.
  check_refused(images, with_header(images.valid, 0, 2052), "other IDX type", {"bad magic"});
  check_refused(labels, with_header(labels.valid, 0, 2051), "images as labels", {"expected 2049"});
  check_refused(images, with_header(images.valid, 1, 0), "zero images", {"no items"});
  check_refused(images, with_header(images.valid, 2, 0), "zero rows", {"image side 0"});
  check_refused(images, with_header(images.valid, 3, 0xffffffffu), "huge columns",
                {"image side 4294967295"});
  // Counts that would need gigabytes: refused from the file size, nothing allocated.
  check_refused(images, with_header(images.valid, 1, 0xffffffffu), "huge count",
                {"truncated file: expected 51539607556 bytes"});
  check_refused(labels, with_header(labels.valid, 1, 0xffffffffu), "huge label count",
                {"truncated"});
  check_refused(labels, with_header(labels.valid, 1, 4) + "", "fewer labels claimed", {"too long"});
  check_refused(labels, idx_labels(4), "4 labels for 5 images", {"count mismatch"});
  std::string label_11 = labels.valid;
  label_11.back() = 11;
  check_refused(labels, label_11, "label 11", {"label 11 of item 4 is out of 0..9"});
}

TEST_CASE("checkpoints: huge counts, other versions and hand-made states are refused",
          "[malformed]") {
  Scratch scratch;
  const auto kinds = file_kinds(scratch.dir);
  const FileKind& checkpoint = kinds[2];

  SECTION("format versions") {
    for (std::uint32_t version : {0u, 6u, 0x01000000u}) {
      std::string bytes = checkpoint.valid;
      std::memcpy(bytes.data() + 8, &version, 4);
      check_refused(checkpoint, bytes, "version " + std::to_string(version),
                    {"format version " + std::to_string(version)});
    }
  }
  SECTION("a huge count inside a payload with a valid checksum: no allocation") {
    std::string payload;
    for (std::uint64_t word : {0ull, 1ull}) put_le(payload, word);  // task, epoch
    put_le(payload, std::uint64_t{0});                              // rng state ""
    put_le(payload, 0.0);                                           // seconds
    put_le(payload, std::uint64_t{0});                              // samples
    put_le(payload, std::uint64_t{1} << 60);                        // layers
    check_refused(checkpoint, framed_checkpoint(payload), "2^60 layers",
                  {"implausible length 1152921504606846976"});
  }
  SECTION("a hand-made checkpoint with a valid checksum that does not fit the run") {
    const learning::Network network = small_network();
    const learning::TrainingState good = small_state(network);
    learning::check_checkpoint_fits(good, checkpoint.file, network, 2, 3);
    auto refusal_of = [&](const learning::TrainingState& state) -> std::string {
      learning::save_checkpoint(checkpoint.file, kConfigHash, state);
      const learning::TrainingState loaded =
          learning::load_checkpoint(checkpoint.file, kConfigHash);
      try {
        learning::check_checkpoint_fits(loaded, checkpoint.file, network, 2, 3);
      } catch (const std::runtime_error& e) {
        return e.what();
      }
      return "";
    };
    learning::TrainingState state = good;
    state.task_index = 7;
    CHECK_THAT(refusal_of(state), Catch::Contains(checkpoint.file.string()) &&
                                      Catch::Contains("position (task 7, epoch 1)"));
    state = good;
    state.epochs_done = 3;
    CHECK_THAT(refusal_of(state), Catch::Contains("position (task 0, epoch 3)"));
    state = good;
    state.hidden_weights[1].pop_back();
    CHECK_THAT(refusal_of(state), Catch::Contains("layer 1 has 29 weights, the network 30"));
    state = good;
    state.hidden_weights[0][2] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THAT(refusal_of(state), Catch::Contains("layer 0 has a non-finite weight"));
    state = good;
    // A depth or importance (checkpoint format 4) is >= 0.
    state.optimizer_moments.push_back({{}, {}, {0.5f, -1.0f, 0.25f}});
    CHECK_THAT(refusal_of(state), Catch::Contains("consolidation state of optimizer tensor 0"));
    state = good;
    // The gradient projection's protected spaces (checkpoint format 5): one per layer, each
    // rank x inputs basis and rank x outputs anchor floats, finite.
    state.protected_spaces.resize(1);
    CHECK_THAT(refusal_of(state), Catch::Contains("protected spaces for 1 layers"));
    state.protected_spaces.resize(network.layers().size());
    state.protected_spaces[1].rank = 2;
    state.protected_spaces[1].basis.assign(2 * network.layers()[1].inputs, 0.0f);
    state.protected_spaces[1].anchor.assign(2 * network.layers()[1].outputs, 0.0f);
    CHECK(refusal_of(state).empty());
    state.protected_spaces[1].basis.pop_back();
    CHECK_THAT(refusal_of(state), Catch::Contains("protected space of layer 1 (rank 2)"));
    state.protected_spaces[1].basis.push_back(std::numeric_limits<float>::infinity());
    CHECK_THAT(refusal_of(state), Catch::Contains("protected space of layer 1 (rank 2)"));
    state.protected_spaces[1].basis.back() = 0.0f;
    state.protected_spaces[1].rank = network.layers()[1].inputs + 1;
    CHECK_THAT(refusal_of(state), Catch::Contains("protected space of layer 1"));
    state = good;
    state.saved_batchnorm.resize(5);
    CHECK_THAT(refusal_of(state), Catch::Contains("saved BatchNorm slots for 5 tasks"));
    state = good;
    state.live_batchnorm[0].gamma.resize(2);
    CHECK_THAT(refusal_of(state), Catch::Contains("BatchNorm of layer 0 has the wrong width"));
  }
}

TEST_CASE("state files: other versions and a huge stored length behind a valid checksum",
          "[malformed]") {
  Scratch scratch;
  const auto kinds = file_kinds(scratch.dir);
  const FileKind& state = kinds[3];
  auto with_checksum = [](std::string body) {
    const std::uint32_t crc = metaplast::protocols::crc32(
        {reinterpret_cast<const std::uint8_t*>(body.data()), body.size()});
    put_le(body, crc);
    return body;
  };
  const std::string body = state.valid.substr(0, state.valid.size() - 4);
  for (std::uint32_t version : {0u, 3u}) {
    std::string bytes = body;
    std::memcpy(bytes.data() + 8, &version, 4);
    check_refused(state, with_checksum(bytes), "version " + std::to_string(version),
                  {"state format version " + std::to_string(version)});
  }
  std::string huge = body;
  const std::uint32_t length = 0xffffffffu;
  std::memcpy(huge.data() + 68, &length, 4);  // the stored calibration's length
  check_refused(state, with_checksum(huge), "huge calibration length", {"truncated at byte 72"});
  check_refused(state, with_checksum(body + "xy"), "trailing bytes", {"trailing bytes"});
  CHECK_THAT(refusal(state, with_checksum(body.substr(0, 5000))),
             Catch::Contains("delete it to start a fresh chip"));
}

TEST_CASE("a task whose images differ in size stops the run before training", "[malformed]") {
  // mnist of 28 x 28 images and fashion of 14 x 28: the second task's split names its file.
  Scratch scratch;
  auto write_task = [&](const std::string& task, std::uint32_t rows) {
    const fs::path dir = scratch.dir / "data" / task;
    fs::create_directories(dir);
    write_bytes(dir / "train-images-idx3-ubyte", idx_images(40, rows, 28));
    write_bytes(dir / "train-labels-idx1-ubyte", idx_labels(40));
    write_bytes(dir / "t10k-images-idx3-ubyte", idx_images(10, rows, 28));
    write_bytes(dir / "t10k-labels-idx1-ubyte", idx_labels(10));
  };
  write_task("mnist", 28);
  write_task("fashion", 14);
  learning::TrainConfig config;
  config.tasks = {"mnist", "fashion"};
  config.epochs = 1;
  config.hidden = {8};
  config.batch = 10;
  config.threads = 1;
  config.data_dir = scratch.dir / "data";
  const fs::path out = scratch.dir / "run";
  CHECK_THROWS_WITH(
      metaplast::hil::run_training(config, out, false),
      Catch::Contains((scratch.dir / "data/fashion/train-images-idx3-ubyte").string()) &&
          Catch::Contains("14 x 28 pixels") &&
          Catch::Contains((scratch.dir / "data/mnist/train-images-idx3-ubyte").string() +
                          ") 28 x 28"));
  CHECK_FALSE(fs::exists(out / "checkpoint.bin"));
}
