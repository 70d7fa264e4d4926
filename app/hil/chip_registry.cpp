#include "app/hil/chip_registry.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/clock.hpp"
#include "common/json_file.hpp"
#include "common/atomic_file.hpp"

namespace metaplast::hil {

using nlohmann::json;

namespace {

bool chip_id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// Advisory lock on <file>.lock for the duration of a read-modify-write.
class FileLock {
 public:
  explicit FileLock(const std::filesystem::path& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      throw std::runtime_error("cannot create the lock file " + path.string() + ": " +
                               std::strerror(errno) + " (is the chips directory writable?)");
    }
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        ::close(fd_);
        throw std::runtime_error("cannot lock " + path.string() + ": " + std::strerror(errno));
      }
    }
  }
  ~FileLock() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

const std::set<std::string> kChipRecordKeys = {
    "schema_version", "kind",         "chip_id",   "geometry", "created",
    "updated",        "formed_cells", "bad_cells", "writes",   "sessions"};
constexpr std::int64_t kMaxGeometry = 1024;  // rows or columns of one array

[[noreturn]] void bad(const std::string& source, const std::string& path,
                      const std::string& expected) {
  throw std::runtime_error(source + ": at " + path + ": expected " + expected);
}

const json& member(const json& doc, const char* key, const std::string& source,
                   const std::string& path) {
  if (!doc.is_object() || !doc.contains(key)) bad(source, path + "/" + key, "a value (missing)");
  return doc.at(key);
}

std::string string_at(const json& doc, const char* key, const std::string& source,
                      const std::string& path, bool required = false) {
  if (!doc.contains(key)) {
    if (required) bad(source, path + "/" + key, "a string (missing)");
    return {};
  }
  const auto& v = doc.at(key);
  if (!v.is_string()) bad(source, path + "/" + key, "a string, got " + v.dump());
  return v.get<std::string>();
}

std::uint64_t uint_at(const json& v, const std::string& source, const std::string& path) {
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
    bad(source, path, "a non-negative integer, got " + v.dump());
  }
  return v.get<std::uint64_t>();
}

}  // namespace

void validate_chip_id(const std::string& chip_id) {
  bool ok = !chip_id.empty() && chip_id.size() <= 64 && chip_id.front() != '.';
  for (char c : chip_id) ok = ok && chip_id_char(c);
  if (!ok) {
    throw std::invalid_argument("chip id '" + chip_id +
                                "' is not valid: use 1 to 64 characters of A-Z a-z 0-9 . _ - "
                                "(not starting with '.'), e.g. --chip W12-D07");
  }
}

std::string chip_id_from_board_serial(const std::string& board_serial) {
  std::string id = "board-";
  for (char c : board_serial) id += chip_id_char(c) ? c : '_';
  if (id.size() > 64) id.resize(64);
  return id;
}

std::string chip_id_for_board(const std::string& given, const std::string& station_chip,
                              const std::string& board_serial) {
  std::string id = !given.empty() ? given : station_chip;
  if (id.empty() && board_serial.empty()) {
    throw std::invalid_argument(
        "no chip id: the board reports no serial and neither --chip nor the station file's "
        "\"chip\" names the die under test; pass --chip ID (e.g. --chip W12-D07) or set "
        "\"chip\" in the station file, so that its record (bad cells, writes) is its own");
  }
  if (id.empty()) id = chip_id_from_board_serial(board_serial);
  validate_chip_id(id);
  return id;
}

void require_same_chip(const devices::Calibration& calibration, const std::string& chip_id,
                       const std::string& what) {
  if (calibration.identity.chip_id == chip_id) return;
  throw ChipMismatchError(what + " was measured on chip '" + calibration.identity.chip_id +
                          "' (board " + calibration.identity.board_model + " " +
                          calibration.identity.board_serial + ", " + calibration.identity.date +
                          "), but the chip under test is '" + chip_id +
                          "': a device model of another die does not describe this one. "
                          "Characterise this chip (metaplast characterize --chip " +
                          chip_id + " ...) or pass the chip this calibration belongs to.");
}

ChipRecord ChipRecord::fresh(const std::string& chip_id, std::uint16_t rows, std::uint16_t cols) {
  ChipRecord r;
  r.chip_id = chip_id;
  r.rows = rows;
  r.cols = cols;
  r.writes_per_cell.assign(std::size_t{rows} * cols, 0);
  r.created = common::utc_now_iso8601();
  r.updated = r.created;
  return r;
}

void ChipRecord::add_writes(std::uint32_t cell, std::uint64_t pulses) {
  if (cell >= writes_per_cell.size()) {
    throw std::out_of_range("chip " + chip_id + ": cell index " + std::to_string(cell) +
                            " outside the " + std::to_string(rows) + " x " + std::to_string(cols) +
                            " array");
  }
  writes_per_cell[cell] += pulses;
  total_writes += pulses;
}

void ChipRecord::mark_bad(std::uint32_t cell, std::string reason, std::string detail,
                          std::string date) {
  if (bad_cells.count(cell)) return;
  bad_cells[cell] = {cell, std::move(reason), std::move(detail), std::move(date)};
}

std::string chip_record_to_json(const ChipRecord& r) {
  json doc;
  doc["schema_version"] = ChipRecord::kSchemaVersion;
  doc["kind"] = "metaplast.chip";
  doc["chip_id"] = r.chip_id;
  doc["geometry"] = {{"rows", r.rows}, {"cols", r.cols}};
  doc["created"] = r.created;
  doc["updated"] = r.updated;
  doc["formed_cells"] = json::array();
  for (auto c : r.formed_cells) doc["formed_cells"].push_back(c);
  doc["bad_cells"] = json::array();
  for (const auto& [cell, b] : r.bad_cells) {
    doc["bad_cells"].push_back({{"cell", cell},
                                {"row", r.cols ? cell / r.cols : 0},
                                {"col", r.cols ? cell % r.cols : 0},
                                {"reason", b.reason},
                                {"detail", b.detail},
                                {"date", b.date}});
  }
  doc["writes"] = {{"total", r.total_writes}, {"per_cell", r.writes_per_cell}};
  doc["sessions"] = json::array();
  for (const auto& s : r.sessions) {
    doc["sessions"].push_back({{"date", s.date},
                               {"kind", s.kind},
                               {"board_model", s.board_model},
                               {"board_serial", s.board_serial},
                               {"cells", s.cells},
                               {"writes", s.writes},
                               {"note", s.note}});
  }
  return doc.dump(1) + "\n";
}

ChipRecord chip_record_from_json(const std::string& text, const std::string& source) {
  const json doc = common::parse_json_text(text, source);
  if (!doc.is_object()) bad(source, "/", "a JSON object");
  for (const auto& [key, value] : doc.items()) {
    if (!kChipRecordKeys.count(key)) {
      bad(source, "/" + key,
          "a known key (schema_version, kind, chip_id, geometry, created, "
          "updated, formed_cells, bad_cells, writes, sessions), got \"" +
              key + "\"");
    }
  }
  const auto& version = member(doc, "schema_version", source, "");
  if (!version.is_number_integer() || version != json(ChipRecord::kSchemaVersion)) {
    bad(source, "/schema_version",
        std::to_string(ChipRecord::kSchemaVersion) + ", got " + version.dump());
  }
  if (doc.contains("kind") && doc["kind"] != "metaplast.chip") {
    bad(source, "/kind", "\"metaplast.chip\", got " + doc["kind"].dump());
  }
  ChipRecord r;
  r.chip_id = string_at(doc, "chip_id", source, "", true);
  validate_chip_id(r.chip_id);
  const auto& geometry = member(doc, "geometry", source, "");
  // Range-checked before narrowing; the bound keeps the per-cell arrays small.
  r.rows = static_cast<std::uint16_t>(common::integer_in_range(
      member(geometry, "rows", source, "/geometry"), source, "/geometry/rows", 1, kMaxGeometry));
  r.cols = static_cast<std::uint16_t>(common::integer_in_range(
      member(geometry, "cols", source, "/geometry"), source, "/geometry/cols", 1, kMaxGeometry));
  const std::uint64_t cells = std::uint64_t{r.rows} * r.cols;
  r.created = string_at(doc, "created", source, "");
  r.updated = string_at(doc, "updated", source, "");
  if (doc.contains("formed_cells")) {
    const auto& f = doc["formed_cells"];
    if (!f.is_array()) bad(source, "/formed_cells", "an array of cell indices");
    for (std::size_t i = 0; i < f.size(); ++i) {
      const auto path = "/formed_cells/" + std::to_string(i);
      const auto c = uint_at(f[i], source, path);
      if (c >= cells) bad(source, path, "a cell index below " + std::to_string(cells));
      r.formed_cells.insert(static_cast<std::uint32_t>(c));
    }
  }
  if (doc.contains("bad_cells")) {
    const auto& b = doc["bad_cells"];
    if (!b.is_array()) bad(source, "/bad_cells", "an array of objects");
    for (std::size_t i = 0; i < b.size(); ++i) {
      const auto path = "/bad_cells/" + std::to_string(i);
      BadCellRecord rec;
      const auto c = uint_at(member(b[i], "cell", source, path), source, path + "/cell");
      if (c >= cells) bad(source, path + "/cell", "a cell index below " + std::to_string(cells));
      rec.cell = static_cast<std::uint32_t>(c);
      rec.reason = string_at(b[i], "reason", source, path, true);
      rec.detail = string_at(b[i], "detail", source, path);
      rec.date = string_at(b[i], "date", source, path);
      r.bad_cells[rec.cell] = rec;
    }
  }
  r.writes_per_cell.assign(cells, 0);
  if (doc.contains("writes")) {
    const auto& w = doc["writes"];
    r.total_writes = uint_at(member(w, "total", source, "/writes"), source, "/writes/total");
    if (w.contains("per_cell")) {
      const auto& p = w["per_cell"];
      if (!p.is_array() || p.size() != cells) {
        bad(source, "/writes/per_cell", "an array of " + std::to_string(cells) + " counts");
      }
      for (std::size_t i = 0; i < cells; ++i) {
        r.writes_per_cell[i] = uint_at(p[i], source, "/writes/per_cell/" + std::to_string(i));
      }
    }
  }
  if (doc.contains("sessions")) {
    const auto& s = doc["sessions"];
    if (!s.is_array()) bad(source, "/sessions", "an array of objects");
    for (std::size_t i = 0; i < s.size(); ++i) {
      const auto path = "/sessions/" + std::to_string(i);
      ChipSession session;
      session.date = string_at(s[i], "date", source, path);
      session.kind = string_at(s[i], "kind", source, path);
      session.board_model = string_at(s[i], "board_model", source, path);
      session.board_serial = string_at(s[i], "board_serial", source, path);
      session.note = string_at(s[i], "note", source, path);
      if (s[i].contains("cells")) session.cells = uint_at(s[i]["cells"], source, path + "/cells");
      if (s[i].contains("writes")) {
        session.writes = uint_at(s[i]["writes"], source, path + "/writes");
      }
      r.sessions.push_back(session);
    }
  }
  return r;
}

ChipRegistry::ChipRegistry(std::filesystem::path directory) : directory_(std::move(directory)) {}

std::filesystem::path ChipRegistry::default_directory() {
  if (const char* env = std::getenv("METAPLAST_CHIPS"); env && *env) return env;
  // The build knows the repository's data directory; chips/ sits next to it.
  return std::filesystem::path(METAPLAST_DEFAULT_DATA_DIR).parent_path() / "chips";
}

std::filesystem::path ChipRegistry::for_run(const std::filesystem::path& chips_dir,
                                            bool simulated_board) {
  if (!chips_dir.empty()) return chips_dir;
  return simulated_board ? std::filesystem::path() : default_directory();
}

std::filesystem::path ChipRegistry::file_for(const std::string& chip_id) const {
  validate_chip_id(chip_id);
  return directory_ / (chip_id + ".json");
}

std::optional<ChipRecord> ChipRegistry::load(const std::string& chip_id) const {
  const auto path = file_for(chip_id);
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  auto record = chip_record_from_json(text.str(), path.string());
  if (record.chip_id != chip_id) {
    throw std::runtime_error(path.string() + ": at /chip_id: expected \"" + chip_id + "\", got \"" +
                             record.chip_id + "\" (file renamed?)");
  }
  return record;
}

ChipRecord ChipRegistry::update(const std::string& chip_id, std::uint16_t rows, std::uint16_t cols,
                                const std::function<void(ChipRecord&)>& change) {
  const auto path = file_for(chip_id);
  std::error_code ec;
  std::filesystem::create_directories(directory_, ec);
  if (ec) {
    throw std::runtime_error("cannot create the chips directory " + directory_.string() + ": " +
                             ec.message() + " (set --chips-dir or $METAPLAST_CHIPS)");
  }
  FileLock lock(path.string() + ".lock");
  auto record = load(chip_id).value_or(ChipRecord::fresh(chip_id, rows, cols));
  if (record.rows != rows || record.cols != cols) {
    throw std::runtime_error(path.string() + ": chip " + chip_id + " is recorded as " +
                             std::to_string(record.rows) + " x " + std::to_string(record.cols) +
                             ", but the board reports " + std::to_string(rows) + " x " +
                             std::to_string(cols) + ": wrong --chip?");
  }
  change(record);
  record.updated = common::utc_now_iso8601();
  common::write_file_atomically(path, chip_record_to_json(record));
  return record;
}

}  // namespace metaplast::hil
