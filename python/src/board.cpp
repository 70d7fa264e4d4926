// metaplast.Board: the array board (instruments::ArrayBoard) opened as the command line opens it
// (app/board/board_session.hpp: address or station, settings layered and checked, the permission
// rule), with reads, pulses and counters as NumPy arrays (docs/python.md, "Boards").
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "app/board/board_session.hpp"
#include "instruments/array_board.hpp"
#include "instruments/board_settings.hpp"
#include "protocols/board_messages.hpp"
#include "python/src/bindings.hpp"

namespace metaplast::python {

namespace {

namespace in = instruments;
using Cells = std::vector<in::Cell>;

// Capability bits by name, as `metaplast board info` prints them.
const std::vector<std::pair<const char*, std::uint32_t>>& capability_names() {
  namespace c = protocols::capability;
  static const std::vector<std::pair<const char*, std::uint32_t>> names = {
      {"PROGRAM_VERIFY", c::kProgramVerify},
      {"TRACE", c::kTrace},
      {"COUNTERS", c::kCounters},
      {"WATCHDOG", c::kWatchdog},
      {"BATCH_STATUS", c::kBatchStatus},
      {"EXPLICIT_SET", c::kExplicitSet},
      {"LEVEL_TABLE", c::kLevelTable}};
  return names;
}

// One coordinate list (rows or cols) as whole numbers: a number or a 1-D array-like.
std::vector<long long> coordinates(const py::object& values, const char* what) {
  if (values.is_none()) {
    throw std::invalid_argument(std::string("no ") + what +
                                ": give rows and cols together (or neither, for the whole array)");
  }
  const auto array = py::array_t<double, py::array::forcecast>::ensure(values);
  if (!array || array.ndim() > 1) {
    throw std::invalid_argument(std::string(what) +
                                " must be a whole number or a 1-D array of them");
  }
  std::vector<long long> out;
  for (py::ssize_t i = 0; i < array.size(); ++i) {
    const double x = array.data()[i];
    if (x != std::floor(x)) {
      throw std::invalid_argument(std::string(what) + "[" + std::to_string(i) +
                                  "] = " + py::repr(py::float_(x)).cast<std::string>() +
                                  " is not a whole number");
    }
    out.push_back(static_cast<long long>(x));
  }
  return out;
}

// rows, cols (array-likes of the same length) as cells. Values outside 0..65535 are refused
// here; the board's geometry is checked by ArrayBoard before anything is sent.
Cells cells_of(const py::object& row_values, const py::object& col_values) {
  const std::vector<long long> rows = coordinates(row_values, "rows");
  const std::vector<long long> cols = coordinates(col_values, "cols");
  if (rows.size() != cols.size()) {
    throw std::invalid_argument("rows and cols must be of the same length (got " +
                                std::to_string(rows.size()) + " rows and " +
                                std::to_string(cols.size()) + " cols)");
  }
  Cells cells(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0 || rows[i] > 0xffff || cols[i] < 0 || cols[i] > 0xffff) {
      throw std::out_of_range("cell " + std::to_string(i) + " (row " + std::to_string(rows[i]) +
                              ", col " + std::to_string(cols[i]) + ") is outside the array");
    }
    cells[i] = {static_cast<std::uint16_t>(rows[i]), static_cast<std::uint16_t>(cols[i])};
  }
  return cells;
}

template <class T>
py::array_t<T> array_of(const std::vector<T>& values, std::vector<py::ssize_t> shape) {
  py::array_t<T> out(shape);
  std::copy(values.begin(), values.end(), out.mutable_data());
  return out;
}

// One value per cell from a number or an array-like of one per cell.
std::vector<double> per_cell(const py::object& values, std::size_t cells, const char* what) {
  const auto array = py::array_t<double, py::array::forcecast>::ensure(values);
  if (!array || array.ndim() > 1) {
    throw std::invalid_argument(std::string("program(): ") + what +
                                " must be a number or a 1-D array of numbers");
  }
  if (array.ndim() == 1 && static_cast<std::size_t>(array.size()) != cells) {
    throw std::invalid_argument("program(): " + std::to_string(array.size()) + " " + what +
                                " for " + std::to_string(cells) +
                                " cells; give one per cell, or one for all");
  }
  std::vector<double> out(cells);
  for (std::size_t i = 0; i < cells; ++i) out[i] = array.data()[array.ndim() == 0 ? 0 : i];
  return out;
}

in::ProgramOptions program_options(double band_us, std::uint32_t max_attempts,
                                   const std::string& implementation) {
  in::ProgramOptions options;
  options.band_us = band_us;
  options.max_attempts = max_attempts;
  if (implementation == "board") {
    options.implementation = in::VerifyImplementation::board;
  } else if (implementation == "host") {
    options.implementation = in::VerifyImplementation::host;
  } else if (implementation != "automatic") {
    throw std::invalid_argument("program(): implementation '" + implementation +
                                "': use automatic, board or host");
  }
  return options;
}

// The cells with their levels, each one of the board's (0 = LCS, 1..N).
std::vector<in::ProgramTarget> level_targets(const in::ArrayBoard& board, const Cells& cells,
                                             const std::vector<double>& levels) {
  const std::size_t top = board.info().levels.size() - 1;
  std::vector<in::ProgramTarget> targets;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const double level = levels[i];
    if (level != std::floor(level) || level < 0 || level > static_cast<double>(top)) {
      throw std::invalid_argument(
          "program(): level " + py::repr(py::float_(level)).cast<std::string>() + " of cell " +
          std::to_string(i) + " is not one of the board's levels 0.." + std::to_string(top));
    }
    targets.push_back({cells[i], static_cast<in::Level>(level)});
  }
  return targets;
}

// The SET gate voltage for conductance `target_us`, interpolated linearly on the level table in
// force (target -> gate; beyond its ends, its first or last segment extended).
double interpolated_gate_v(const std::vector<in::LevelInfo>& levels, double target_us) {
  std::size_t k = 2;  // the segment levels[k - 1] .. levels[k]
  while (k + 1 < levels.size() && levels[k].target_conductance_us < target_us) ++k;
  const in::LevelInfo& a = levels[k - 1];
  const in::LevelInfo& b = levels[k];
  const double slope =
      (b.gate_voltage_v - a.gate_voltage_v) / (b.target_conductance_us - a.target_conductance_us);
  return a.gate_voltage_v + slope * (target_us - a.target_conductance_us);
}

// A board opened for Python. The ArrayBoard is shared with the calls in flight, so close() from
// another thread waits for nothing and frees nothing they still use.
class Board {
 public:
  Board(std::optional<std::string> address, std::optional<std::string> station,
        const py::object& settings, bool yes, std::optional<std::string> record) {
    options_.device = address.value_or("");
    if (station) options_.station = *station;
    if (record) options_.record = *record;
    options_.yes = yes;
    if (!settings.is_none()) {
      options_.settings = in::setting_values_from_json(to_json(settings, "Board(settings=...)"),
                                                       "Board(settings=...)", "");
    }
    if (options_.device.empty() && !options_.station) {
      throw std::invalid_argument(
          "Board(): no board: give an address (\"sim:?seed=1&formed=1\", \"tcp:HOST:PORT\", "
          "\"serial:/dev/ttyUSB0\") or station=FILE naming its array-board");
    }
    settings_ = board::session_settings(options_);
    py::gil_scoped_release release;
    board_ = board::open_active_board(options_, settings_);
  }

  ~Board() {
    // Safe state and close on garbage collection too, without holding the GIL on the link.
    py::gil_scoped_release release;
    board_.reset();
  }

  std::shared_ptr<in::ArrayBoard> get() const {
    if (!board_) {
      throw in::LifecycleError("the board is closed; open a new metaplast.Board");
    }
    return board_;
  }

  void close() {
    std::shared_ptr<in::ArrayBoard> board = std::move(board_);
    py::gil_scoped_release release;
    if (board) board->close();
  }

  void require_pulses(const char* what) const { board::require_pulse_permission(what, options_); }

  py::dict configure(const py::kwargs& values) {
    const auto board = get();
    const auto given =
        in::setting_values_from_json(to_json(values, "configure()"), "configure()", "");
    // On top of the settings last applied (kept here: after a reboot the board has none).
    const in::BoardSettings settings = in::with_values(settings_, given);
    {
      py::gil_scoped_release release;
      board->configure(settings);
      board->activate();
    }
    settings_ = settings;
    return settings_dict();
  }

  py::dict settings_dict() const {
    get();  // StateError once closed
    return py::cast<py::dict>(from_json(in::settings_to_json(settings_)));
  }

  py::object read(const py::object& rows, const py::object& cols, bool with_codes) {
    const auto board = get();
    std::vector<double> g;
    std::vector<std::uint16_t> codes;
    std::vector<py::ssize_t> shape;
    if (rows.is_none() && cols.is_none()) {  // the whole array
      in::ConductanceMap map;
      {
        py::gil_scoped_release release;
        map = board->read_array();
      }
      shape = {map.rows, map.cols};
      g = std::move(map.conductance_us);
      codes = std::move(map.codes);
    } else {
      const Cells cells = cells_of(rows, cols);
      std::vector<in::CellReading> readings;
      {
        py::gil_scoped_release release;
        readings = board->read(cells);
      }
      shape = {static_cast<py::ssize_t>(readings.size())};
      for (const auto& r : readings) {
        g.push_back(r.conductance_us);
        codes.push_back(r.code);
      }
    }
    py::array_t<double> conductance = array_of(g, shape);
    if (!with_codes) return conductance;
    return py::make_tuple(conductance, array_of(codes, shape));
  }

  void pulse(const char* what, const py::object& rows, const py::object& cols,
             const std::function<void(in::ArrayBoard&, const Cells&)>& apply) {
    const auto board = get();
    const Cells cells = cells_of(rows, cols);
    require_pulses(what);
    py::gil_scoped_release release;
    apply(*board, cells);
  }

  py::dict program(const py::object& rows, const py::object& cols, const py::object& levels,
                   const py::object& targets_us, double band_us, std::uint32_t max_attempts,
                   const std::string& implementation) {
    const auto board = get();
    const Cells cells = cells_of(rows, cols);
    const in::ProgramOptions options = program_options(band_us, max_attempts, implementation);
    if (levels.is_none() == targets_us.is_none()) {
      throw std::invalid_argument(
          "program(): give the cells' levels (levels=) or their conductances (targets_us=), "
          "one of the two");
    }
    if (targets_us.is_none()) {
      const auto targets = level_targets(*board, cells, per_cell(levels, cells.size(), "levels"));
      require_pulses("Board.program");
      in::ProgramReport report;
      {
        py::gil_scoped_release release;
        report = board->program_and_verify(targets, options);
      }
      return program_result(report);
    }
    return program_to_conductance(*board, cells, per_cell(targets_us, cells.size(), "targets_us"),
                                  options);
  }

  py::dict counters(const py::object& rows, const py::object& cols) {
    const auto board = get();
    std::vector<in::CellCounters> counters;
    std::vector<py::ssize_t> shape;
    if (rows.is_none() && cols.is_none()) {
      py::gil_scoped_release release;
      counters = board->counters_array();
      shape = {board->info().rows, board->info().cols};
    } else {
      const Cells cells = cells_of(rows, cols);
      py::gil_scoped_release release;
      counters = board->counters(cells);
      shape = {static_cast<py::ssize_t>(counters.size())};
    }
    std::vector<std::uint32_t> set, reset, form;
    for (const auto& c : counters) {
      set.push_back(c.set_pulses);
      reset.push_back(c.reset_pulses);
      form.push_back(c.form_pulses);
    }
    py::dict d;
    d["set_pulses"] = array_of(set, shape);
    d["reset_pulses"] = array_of(reset, shape);
    d["form_pulses"] = array_of(form, shape);
    return d;
  }

  const board::SessionOptions& options() const { return options_; }

 private:
  // Programs each cell to its conductance: the distinct targets become a level table (gates
  // interpolated on the table in force, docs/python.md), applied for this call only; the settings
  // in force before are restored afterwards, also when programming fails.
  py::dict program_to_conductance(in::ArrayBoard& board, const Cells& cells,
                                  const std::vector<double>& targets_us,
                                  const in::ProgramOptions& options) {
    std::vector<double> table = targets_us;
    std::sort(table.begin(), table.end());
    table.erase(std::unique(table.begin(), table.end()), table.end());
    if (table.size() > in::kMaxTableLevels) {
      throw std::invalid_argument(
          "program(): " + std::to_string(table.size()) +
          " distinct conductance targets, and a level table holds at most " +
          std::to_string(in::kMaxTableLevels) + ": program them in groups, or round them");
    }
    const std::vector<in::LevelInfo>& levels = board.info().levels;
    if (levels.size() < 3) {
      throw std::invalid_argument(
          "program(): conductance targets need a level table of at least 2 levels in force, to "
          "interpolate their gate voltages");
    }
    const in::BoardSettings previous = settings_;
    in::BoardSettings with_table = previous;
    with_table.level_targets_us = table;
    with_table.level_gate_voltages_v.clear();
    for (double target : table) {
      if (!(target > levels[0].target_conductance_us)) {
        throw std::invalid_argument(
            "program(): conductance target " + py::repr(py::float_(target)).cast<std::string>() +
            " uS is not above the LCS target (" + std::to_string(levels[0].target_conductance_us) +
            " uS): program such cells to level 0 with levels=");
      }
      with_table.level_gate_voltages_v.push_back(interpolated_gate_v(levels, target));
    }
    std::vector<in::ProgramTarget> targets;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      const auto at = std::lower_bound(table.begin(), table.end(), targets_us[i]);
      targets.push_back({cells[i], static_cast<in::Level>(1 + (at - table.begin()))});
    }
    require_pulses("Board.program");
    in::ProgramReport report;
    {
      py::gil_scoped_release release;
      const auto restore = [&] {
        board.configure(previous);
        board.activate();
      };
      board.configure(with_table);
      board.activate();
      try {
        report = board.program_and_verify(targets, options);
      } catch (...) {
        try {
          restore();
        } catch (...) {
        }  // the programming error is the one to report
        throw;
      }
      restore();
    }
    py::dict result = program_result(report);
    result["target_us"] = array_of(targets_us, {static_cast<py::ssize_t>(targets_us.size())});
    return result;
  }

  static py::dict program_result(const in::ProgramReport& report) {
    std::vector<double> g;
    std::vector<std::uint16_t> code;
    std::vector<std::uint32_t> pulses;
    std::vector<std::uint8_t> level;
    std::vector<bool> in_band, not_formed;
    for (const auto& c : report.cells) {
      g.push_back(c.final_conductance_us);
      code.push_back(c.final_code);
      pulses.push_back(c.attempts);
      level.push_back(c.target_level);
      in_band.push_back(c.passed);
      not_formed.push_back(c.not_formed);
    }
    const std::vector<py::ssize_t> shape = {static_cast<py::ssize_t>(report.cells.size())};
    const auto bools = [&](const std::vector<bool>& v) {
      py::array_t<bool> out(shape);
      std::copy(v.begin(), v.end(), out.mutable_data());
      return out;
    };
    py::dict d;
    d["conductance_us"] = array_of(g, shape);
    d["code"] = array_of(code, shape);
    d["pulses"] = array_of(pulses, shape);
    d["level"] = array_of(level, shape);
    d["in_band"] = bools(in_band);
    d["not_formed"] = bools(not_formed);
    d["implementation"] = report.used == in::VerifyImplementation::board ? "board" : "host";
    return d;
  }

  board::SessionOptions options_;
  in::BoardSettings settings_;  // applied by the last configure (or at opening)
  std::shared_ptr<in::ArrayBoard> board_;
};

py::dict link_stats_dict(const in::LinkStats& s) {
  py::dict d;
  d["frames_sent"] = s.frames_sent;
  d["frames_received"] = s.frames_received;
  d["bytes_written"] = s.bytes_written;
  d["bytes_read"] = s.bytes_read;
  d["resends"] = s.resends;
  d["reconnects"] = s.reconnects;
  d["stale_replies_discarded"] = s.stale_replies_discarded;
  d["corrupt_replies"] = s.corrupt_replies;
  d["bad_crc_nacks"] = s.bad_crc_nacks;
  return d;
}

constexpr const char* kBoardDoc =
    R"doc(The 128 x 128 1T1R array test board (docs/python.md, "Boards").

Board(address=None, *, station=None, settings=None, yes=False, record=None)

Opens the board at `address` ("sim:?seed=1&formed=1" for the in-process simulated board,
"tcp:HOST:PORT", "serial:/dev/ttyUSB0?baud=921600"), or the array-board of the station file
`station`, identifies it, configures it with the board settings and activates it: the same
settings, layering and limits as the command line (`metaplast board config`). `settings` is a
dict of setting keys ({"read_voltage_v": 0.15, "set_pulse_width_ns": 200, ...}); the station's
"board_settings" and the built-in values fill the rest, and every value is checked against the
station's limits before anything is sent, then against the board's.

Pulses (form, set, reset, program) on a board that is not an in-process sim: board need
yes=True or "allow_pulses": true in the station file, as the command line's --yes.

Use it as a context manager: on leaving the block, normally or by an exception, the board goes to
its safe state (lines grounded) and the link is closed. close() does the same.

Arrays: conductances are float64 in microsiemens, raw ADC codes uint16, counters uint32; a
whole-array call returns shape (rows, cols) = (128, 128), a call with rows/cols returns one value
per cell in their order. Every call talking to the board releases the GIL.

Errors: metaplast.AddressError, LimitError, InputError before anything is sent; LinkError,
ProtocolError, RebootedError from the board; StateError after close().)doc";

}  // namespace

nlohmann::json board_info_json(const instruments::BoardInfo& info) {
  nlohmann::json capabilities = nlohmann::json::array();
  for (const auto& [name, bit] : capability_names()) {
    if (info.has(bit)) capabilities.push_back(name);
  }
  nlohmann::json levels = nlohmann::json::array();
  for (const auto& level : info.levels) {
    levels.push_back({{"icc_ua", level.icc_ua},
                      {"gate_voltage_v", level.gate_voltage_v},
                      {"target_conductance_us", level.target_conductance_us}});
  }
  const in::BoardLimits& b = info.limits;
  return {{"model", info.model},
          {"serial", info.serial},
          {"firmware_version", info.firmware_version},
          {"protocol_version", info.protocol_version},
          {"rows", info.rows},
          {"cols", info.cols},
          {"adc_bits", info.adc_bits},
          {"dac_bits", info.dac_bits},
          {"boot_id", info.boot_id},
          {"capabilities", capabilities},
          {"levels", levels},
          {"limits",
           {{"read_voltage_min_v", b.read_voltage_min_v},
            {"read_voltage_max_v", b.read_voltage_max_v},
            {"max_wl_voltage_v", b.max_wl_voltage_v},
            {"max_bl_voltage_v", b.max_bl_voltage_v},
            {"max_sl_voltage_v", b.max_sl_voltage_v},
            {"pulse_width_min_ns", b.pulse_width_min_ns},
            {"pulse_width_max_ns", b.pulse_width_max_ns},
            {"max_attempts", b.max_attempts},
            {"watchdog_min_ms", b.watchdog_min_ms},
            {"watchdog_max_ms", b.watchdog_max_ms}}}};
}

void bind_board(py::module_& m) {
  py::class_<Board>(m, "Board", kBoardDoc)
      .def(py::init<std::optional<std::string>, std::optional<std::string>, const py::object&, bool,
                    std::optional<std::string>>(),
           py::arg("address") = py::none(), py::kw_only(), py::arg("station") = py::none(),
           py::arg("settings") = py::none(), py::arg("yes") = false, py::arg("record") = py::none())
      .def("__enter__", [](py::object self) { return self; })
      .def(
          "__exit__",
          [](Board& b, const py::object&, const py::object&, const py::object&) {
            b.close();
            return false;
          },
          "Safe state and close, whatever ended the block.")
      .def("close", &Board::close,
           "Safe state (lines grounded), then close the link. Idempotent; never raises.")
      .def(
          "safe",
          [](Board& b) {
            const auto board = b.get();
            py::gil_scoped_release release;
            board->safe_state();
          },
          "Put the board in its safe state (lines grounded). configure() leaves it.")
      .def_property_readonly(
          "address", [](const Board& b) { return b.get()->address(); },
          "The board's address as opened (a station's array-board resolved).")
      .def_property_readonly(
          "state", [](const Board& b) { return std::string(in::to_string(b.get()->state())); },
          "Lifecycle state: connected, configured, active or safe.")
      .def_property_readonly(
          "info", [](const Board& b) { return from_json(board_info_json(b.get()->info())); },
          "What the board reported at identify: model, serial, firmware_version, "
          "protocol_version, rows, cols, adc_bits, dac_bits, boot_id, capabilities (names), "
          "levels (list of {icc_ua, gate_voltage_v, target_conductance_us}; index 0 = LCS) and "
          "limits (the board's own).")
      .def(
          "identify",
          [](Board& b) {
            const auto board = b.get();
            {
              py::gil_scoped_release release;
              board->identify();
            }
            return from_json(board_info_json(board->info()));
          },
          "Identify again and return info. Raises RebootedError if the board reset meanwhile.")
      .def_property_readonly(
          "settings", [](const Board& b) { return b.settings_dict(); },
          "The board settings in force, by key (units in the names; empty level lists: the "
          "board's own level table).")
      .def_static(
          "setting_keys",
          [] {
            py::dict d;
            for (const auto& f : in::setting_fields()) {
              py::dict field;
              field["unit"] = f.unit;
              field["meaning"] = f.meaning;
              field["option"] = f.option;
              field["maximum"] = f.maximum;
              field["integer"] = f.integer;
              field["list"] = f.list;
              d[f.key] = field;
            }
            return d;
          },
          "setting_keys() -> dict\n\nEvery board setting: key -> {unit, meaning, option (the "
          "command line's), maximum "
          "(what a value can hold at all; the station's and the board's limits come on top), "
          "integer, list (one number per level: the level table)}.")
      .def_property_readonly(
          "station_limits",
          [](const Board& b) {
            return from_json(in::to_json(b.get()->station_limits()).at("limits"));
          },
          "The host's safety limits in force (the station file's, else the built-in "
          "conservative ones), checked before anything is sent.")
      .def("configure", &Board::configure,
           "configure(**settings) -> dict\n\nApply settings by key on top of those in force "
           "(read_voltage_v=0.15, level_gate_voltages_v=[...], ...), checked against the "
           "station's and the board's limits before anything is sent, and activate. Returns "
           "the settings now in force. Raises LimitError, InputError. configure() with no "
           "settings applies those in force again: after a RebootedError, or to leave safe().")
      .def("read", &Board::read, py::arg("rows") = py::none(), py::arg("cols") = py::none(),
           py::kw_only(), py::arg("with_codes") = false,
           "read(rows=None, cols=None, *, with_codes=False)\n\nRead conductances (float64, "
           "uS): the whole array as shape (rows, cols), or the given cells in order. With "
           "with_codes=True, returns (conductance_us, codes) with the raw ADC codes as "
           "uint16 of the same shape, from the same read.")
      .def(
          "form",
          [](Board& b, const py::object& rows, const py::object& cols) {
            b.pulse("Board.form", rows, cols,
                    [](in::ArrayBoard& board, const Cells& cells) { board.form(cells); });
          },
          py::arg("rows"), py::arg("cols"),
          "Apply the FORM pulse (the settings' form_* conditions) to the cells.")
      .def(
          "set",
          [](Board& b, const py::object& rows, const py::object& cols, int level) {
            if (level < 1 || level > 255) {
              throw std::invalid_argument("set(): level " + std::to_string(level) +
                                          " is not an HCS level (1..N)");
            }
            b.pulse("Board.set", rows, cols, [level](in::ArrayBoard& board, const Cells& cells) {
              board.set(cells, static_cast<in::Level>(level));
            });
          },
          py::arg("rows"), py::arg("cols"), py::arg("level"),
          "One SET pulse at HCS level `level` (1..N, the level table's gate) on each cell; no "
          "verify.")
      .def(
          "reset",
          [](Board& b, const py::object& rows, const py::object& cols) {
            b.pulse("Board.reset", rows, cols,
                    [](in::ArrayBoard& board, const Cells& cells) { board.reset(cells); });
          },
          py::arg("rows"), py::arg("cols"), "One RESET pulse on each cell; no verify.")
      .def("program", &Board::program, py::arg("rows"), py::arg("cols"),
           py::arg("levels") = py::none(), py::kw_only(), py::arg("targets_us") = py::none(),
           py::arg("band_us") = 5.0, py::arg("max_attempts") = 20,
           py::arg("implementation") = "automatic",
           "program(rows, cols, levels=None, *, targets_us=None, band_us=5.0, max_attempts=20, "
           "implementation='automatic') -> dict\n\nProgram-and-verify each cell to its level "
           "(levels: 0 = LCS, 1..N) or to its conductance (targets_us, uS), one for all cells "
           "or one per cell, within band_us. Conductance targets become a level table for this "
           "call (at most 15 distinct targets; SET gates interpolated on the table in force), "
           "and the settings in force are restored afterwards. Returns per-cell arrays: "
           "conductance_us (final, float64), code (uint16), pulses (uint32), level (uint8), "
           "in_band (bool), not_formed (bool), target_us (with targets_us), and "
           "'implementation' ('board' or 'host'). max_attempts is checked against the "
           "station's max_pulses_per_verify.")
      .def("counters", &Board::counters, py::arg("rows") = py::none(), py::arg("cols") = py::none(),
           "counters(rows=None, cols=None) -> dict\n\nThe board's pulse counters as uint32 "
           "arrays set_pulses, reset_pulses, form_pulses: the whole array (rows, cols) or the "
           "given cells.")
      .def(
          "link_stats", [](const Board& b) { return link_stats_dict(b.get()->link_stats()); },
          "Link statistics: frames, bytes, resends, reconnects, corrupt replies, CRC NACKs.")
      .def("__repr__", [](const Board& b) {
        return "<metaplast.Board " + board::board_address(b.options()) + ">";
      });
}

}  // namespace metaplast::python
