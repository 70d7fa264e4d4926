// Session recording: every frame both ways, with timestamps, as JSON lines (one object per line,
// so a crashed session still leaves a readable file up to its last frame).
//
//   {"format":"metaplast-board-record","version":1,"device":"sim:?seed=1","started_utc":"..."}
//   {"t_us":0,"dir":"tx","frame":"a55a01..."}      host -> board, the whole frame as sent
//   {"t_us":812,"dir":"rx","frame":"a55a01..."}    board -> host, a whole valid frame
//
// t_us is microseconds since the header line (steady clock). Frames are lower-case hex of the
// exact bytes of one frame (docs/protocol.md). Resent frames appear again (same sequence number);
// garbage or CRC-failed bytes are not frames and are not recorded.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace metaplast::instruments {

enum class FrameDirection { to_board, from_board };

struct RecordedFrame {
  std::int64_t t_us = 0;
  FrameDirection direction = FrameDirection::to_board;
  std::vector<std::uint8_t> bytes;
};

class FrameRecorder {
 public:
  // Creates (truncates) the file. Throws std::runtime_error if it cannot be written.
  FrameRecorder(const std::filesystem::path& path, const std::string& device_address);
  void record(FrameDirection direction, std::span<const std::uint8_t> frame);
  std::size_t frames_recorded() const;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  mutable std::mutex mutex_;
  std::ofstream out_;
  std::chrono::steady_clock::time_point start_;
  std::size_t frames_ = 0;
};

struct Recording {
  std::string device;  // address the session was recorded against
  std::string started_utc;
  std::vector<RecordedFrame> frames;
};

// Reads a recording. Throws std::runtime_error naming the file and line of anything malformed.
Recording load_recording(const std::filesystem::path& path);

std::string to_hex(std::span<const std::uint8_t> bytes);
std::vector<std::uint8_t> from_hex(const std::string& hex);  // throws std::invalid_argument

}  // namespace metaplast::instruments
