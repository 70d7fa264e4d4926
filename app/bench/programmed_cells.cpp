#include "app/bench/programmed_cells.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>
#include <stdexcept>

#include "app/bench/options.hpp"

namespace metaplast::bench {

namespace in = metaplast::instruments;
using nlohmann::json;

void check_programming_options(const ProgramPlan& p, std::int64_t max_cells) {
  if (!(p.band_us > 0) || p.band_us > 1000) {
    throw OptionError("band-us", "the verify band half-width must be in (0, 1000] uS");
  }
  if (p.max_attempts < 1 || p.max_attempts > 10'000) {
    throw OptionError("max-attempts", "must be in 1..10000");
  }
  if (p.chunk_cells < 1 || p.chunk_cells > static_cast<std::size_t>(max_cells)) {
    throw OptionError("chunk-cells", "must be in 1.." + std::to_string(max_cells));
  }
  if (!(p.formed_threshold_us >= 0) || !std::isfinite(p.formed_threshold_us)) {
    throw OptionError("formed-threshold-us", "must be >= 0 (0: 0.2 x the LCS target)");
  }
}

json to_json(const ProgramPlan& p) {
  return {{"cells", p.cells},
          {"levels", p.levels},
          {"seed", p.seed},
          {"band-us", p.band_us},
          {"max-attempts", p.max_attempts},
          {"formed-threshold-us", p.formed_threshold_us},
          {"chunk-cells", p.chunk_cells}};
}

void read_programming_options(const json& step, std::int64_t max_cells, ProgramPlan& p) {
  if (step.contains("seed")) {
    p.seed = static_cast<std::uint64_t>(json_integer(step, "seed", 0, INT64_MAX));
  }
  if (step.contains("band-us")) p.band_us = json_number(step, "band-us", 1e-3, 1000);
  if (step.contains("max-attempts")) {
    p.max_attempts = static_cast<std::uint32_t>(json_integer(step, "max-attempts", 1, 10'000));
  }
  if (step.contains("formed-threshold-us")) {
    p.formed_threshold_us = json_number(step, "formed-threshold-us", 0, 1e6);
  }
  if (step.contains("chunk-cells")) {
    p.chunk_cells = json_integer(step, "chunk-cells", 1, max_cells);
  }
}

ProgrammedCells choose_formed_cells(in::ArrayBoard& board, const ProgramPlan& plan) {
  const auto& info = board.info();
  ProgrammedCells out;
  out.boot_id = info.boot_id;
  if (plan.levels.empty()) {
    for (std::size_t l = 0; l < info.levels.size(); ++l) out.levels.push_back(static_cast<int>(l));
  } else {
    out.levels = plan.levels;
    std::sort(out.levels.begin(), out.levels.end());
    out.levels.erase(std::unique(out.levels.begin(), out.levels.end()), out.levels.end());
    for (int l : out.levels) {
      if (l < 0 || static_cast<std::size_t>(l) >= info.levels.size()) {
        throw std::invalid_argument("--levels: level " + std::to_string(l) +
                                    " does not exist on this board (levels 0.." +
                                    std::to_string(info.levels.size() - 1) + ")");
      }
    }
  }
  out.formed_threshold_us =
      plan.formed_threshold_us > 0 ? plan.formed_threshold_us : 0.2 * board.level_conductance_us(0);
  const auto map = board.read_array();
  std::vector<in::Cell> formed;
  for (std::uint16_t r = 0; r < map.rows; ++r) {
    for (std::uint16_t c = 0; c < map.cols; ++c) {
      const in::Cell cell{static_cast<std::uint16_t>(map.row0 + r),
                          static_cast<std::uint16_t>(map.col0 + c)};
      if (map.at_us(cell.row, cell.col) >= out.formed_threshold_us) formed.push_back(cell);
    }
  }
  out.formed = formed.size();
  out.unformed = info.cells() - formed.size();
  if (formed.size() < plan.cells) {
    std::ostringstream m;
    m << "--cells " << plan.cells << " but only " << formed.size() << " of " << info.cells()
      << " cells read as formed (>= " << out.formed_threshold_us
      << " uS). Ask for fewer cells, or form the chip first with an explicit `metaplast board "
         "form --device "
      << board.address() << "` (measurements never form cells)";
    throw std::invalid_argument(m.str());
  }
  // A seeded random subset (partial Fisher-Yates).
  std::mt19937_64 rng(plan.seed);
  for (std::size_t i = 0; i < plan.cells; ++i) {
    std::uniform_int_distribution<std::size_t> pick(i, formed.size() - 1);
    std::swap(formed[i], formed[pick(rng)]);
  }
  for (std::size_t i = 0; i < plan.cells; ++i) {
    ProgrammedCell p;
    p.cell = formed[i];
    p.level = out.levels[i % out.levels.size()];
    p.target_us = board.level_conductance_us(static_cast<in::Level>(p.level));
    p.chunk = i / plan.chunk_cells;
    out.cells.push_back(p);
  }
  return out;
}

ProgrammedCells choose_and_program(in::ArrayBoard& board, const ProgramPlan& plan) {
  ProgrammedCells out = choose_formed_cells(board, plan);
  in::ProgramOptions po;
  po.band_us = plan.band_us;
  po.max_attempts = plan.max_attempts;
  for (std::size_t start = 0; start < out.cells.size(); start += plan.chunk_cells) {
    const std::size_t end = std::min(out.cells.size(), start + plan.chunk_cells);
    std::vector<in::ProgramTarget> targets;
    for (std::size_t i = start; i < end; ++i) {
      targets.push_back({out.cells[i].cell, static_cast<in::Level>(out.cells[i].level)});
    }
    const double before_ms = board.uptime_ms();
    const auto report = board.program_and_verify(targets, po);
    for (std::size_t i = start; i < end; ++i) {
      const auto& r = report.cells[i - start];
      out.cells[i].verify_us = r.final_conductance_us;
      out.cells[i].passed = r.passed;
      out.cells[i].attempts = r.attempts;
    }
    // The cells' last pulses fell between the two stamps: the middle is the chunk's t = 0 (on a
    // real board the chunk takes milliseconds; on an accelerated clock, seconds).
    out.chunk_end_ms.push_back(0.5 * (before_ms + board.uptime_ms()));
  }
  return out;
}

json to_json(const ProgrammedCells& p) {
  json cells = json::array();
  for (const auto& c : p.cells) {
    cells.push_back(
        {c.cell.row, c.cell.col, c.level, c.target_us, c.verify_us, c.passed, c.attempts, c.chunk});
  }
  return {{"cells", cells},
          {"levels", p.levels},
          {"chunk_end_ms", p.chunk_end_ms},
          {"boot_id", p.boot_id},
          {"formed_threshold_us", p.formed_threshold_us},
          {"formed", p.formed},
          {"unformed", p.unformed}};
}

ProgrammedCells programmed_cells_from_json(const json& j) {
  ProgrammedCells p;
  for (const json& c : j.at("cells")) {
    ProgrammedCell x;
    x.cell = {c.at(0).get<std::uint16_t>(), c.at(1).get<std::uint16_t>()};
    x.level = c.at(2).get<int>();
    x.target_us = c.at(3).get<double>();
    x.verify_us = c.at(4).get<double>();
    x.passed = c.at(5).get<bool>();
    x.attempts = c.at(6).get<std::uint32_t>();
    x.chunk = c.at(7).get<std::size_t>();
    p.cells.push_back(x);
  }
  p.levels = j.at("levels").get<std::vector<int>>();
  p.chunk_end_ms = j.at("chunk_end_ms").get<std::vector<double>>();
  p.boot_id = j.at("boot_id").get<std::uint32_t>();
  p.formed_threshold_us = j.at("formed_threshold_us").get<double>();
  p.formed = j.at("formed").get<std::size_t>();
  p.unformed = j.at("unformed").get<std::size_t>();
  return p;
}

std::vector<in::Cell> cell_list(const ProgrammedCells& p) {
  std::vector<in::Cell> out;
  out.reserve(p.cells.size());
  for (const auto& c : p.cells) out.push_back(c.cell);
  return out;
}

}  // namespace metaplast::bench
