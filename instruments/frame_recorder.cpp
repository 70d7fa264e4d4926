#include "instruments/frame_recorder.hpp"

#include <ctime>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/clock.hpp"
#include "common/json_file.hpp"

namespace metaplast::instruments {

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

std::vector<std::uint8_t> from_hex(const std::string& hex) {
  auto nibble = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw std::invalid_argument("not a hex digit: '" + std::string(1, c) + "'");
  };
  if (hex.size() % 2 != 0) throw std::invalid_argument("odd number of hex digits");
  std::vector<std::uint8_t> out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<std::uint8_t>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  }
  return out;
}

FrameRecorder::FrameRecorder(const std::filesystem::path& path, const std::string& device_address)
    : path_(path), out_(path, std::ios::trunc), start_(std::chrono::steady_clock::now()) {
  if (!out_) {
    throw std::runtime_error("cannot write the recording file " + path.string() +
                             " (check the directory exists and is writable)");
  }
  nlohmann::json header = {{"format", "metaplast-board-record"},
                           {"version", 1},
                           {"device", device_address},
                           {"started_utc", common::utc_now_iso8601()}};
  out_ << header.dump() << '\n';
  out_.flush();
}

void FrameRecorder::record(FrameDirection direction, std::span<const std::uint8_t> frame) {
  const auto t_us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - start_)
                        .count();
  std::lock_guard lock(mutex_);
  out_ << "{\"t_us\":" << t_us << ",\"dir\":\""
       << (direction == FrameDirection::to_board ? "tx" : "rx") << "\",\"frame\":\""
       << to_hex(frame) << "\"}\n";
  out_.flush();
  ++frames_;
}

std::size_t FrameRecorder::frames_recorded() const {
  std::lock_guard lock(mutex_);
  return frames_;
}

Recording load_recording(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read recording " + path.string());
  Recording rec;
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    const std::string where = path.string() + ":" + std::to_string(line_no);
    const nlohmann::json j = common::parse_json_text(line, where);
    if (line_no == 1) {
      if (j.value("format", "") != "metaplast-board-record") {
        throw std::runtime_error(where +
                                 ": not a metaplast board recording (the first line must "
                                 "have \"format\":\"metaplast-board-record\"; record one with "
                                 "--record FILE)");
      }
      rec.device = j.value("device", "");
      rec.started_utc = j.value("started_utc", "");
      continue;
    }
    try {
      RecordedFrame f;
      f.t_us = j.at("t_us").get<std::int64_t>();
      const auto dir = j.at("dir").get<std::string>();
      if (dir == "tx") {
        f.direction = FrameDirection::to_board;
      } else if (dir == "rx") {
        f.direction = FrameDirection::from_board;
      } else {
        throw std::invalid_argument("\"dir\" must be \"tx\" or \"rx\", got \"" + dir + "\"");
      }
      f.bytes = from_hex(j.at("frame").get<std::string>());
      rec.frames.push_back(std::move(f));
    } catch (const std::exception& e) {
      throw std::runtime_error(where + ": bad frame line: " + e.what());
    }
  }
  if (line_no == 0) throw std::runtime_error(path.string() + ": empty recording");
  return rec;
}

}  // namespace metaplast::instruments
