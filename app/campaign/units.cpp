#include "app/campaign/units.hpp"

#include <algorithm>
#include <charconv>
#include <sstream>
#include <stdexcept>

#include "app/board/board_session.hpp"

namespace metaplast::campaign {

namespace {

std::string option_text(const nlohmann::json& options, const char* key) {
  const auto it = options.find(key);
  return it != options.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

bool uses_board_lane(const PlannedStep& step) {
  const std::string device = option_text(step.options, "device");
  if (step.type == "train") {
    const bool on_board = !device.empty() ||
                          option_text(step.options, "placement").find("board") != std::string::npos;
    if (!on_board) return false;
  } else if (step.type != "characterize" && !is_measurement_step(step.type)) {
    return false;
  }
  return device.empty() || !board::is_sim_address(device) ||
         !option_text(step.options, "chips-dir").empty();
}

std::string pulsed_board_address(const PlannedStep& step, const instruments::Station& station) {
  const bool board_layer =
      option_text(step.options, "placement").find("board") != std::string::npos;
  if (step.type != "characterize" && !is_measurement_step(step.type) &&
      !(step.type == "train" && board_layer)) {
    return "";
  }
  const std::string device = option_text(step.options, "device");
  if (!device.empty()) return device;
  const auto* board = station.array_board();
  return board ? board->address : std::string();
}

std::vector<Unit> plan_units(const std::vector<PlannedStep>& steps) {
  std::vector<Unit> units(steps.size());
  std::optional<std::size_t> previous_board;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    Unit& u = units[i];
    u.index = i;
    u.board = uses_board_lane(steps[i]);
    if (steps[i].type == "train" && steps[i].options.contains("threads")) {
      u.threads = std::max(1, steps[i].options["threads"].get<int>());
    }
    for (const auto& link : steps[i].links) {
      for (std::size_t j = 0; j < i; ++j) {
        if (steps[j].id == link.from) u.waits_on.push_back(j);
      }
    }
    if (steps[i].type == "report") {
      for (std::size_t j = 0; j < i; ++j) u.waits_on.push_back(j);
    }
    if (u.board && previous_board) u.waits_on.push_back(*previous_board);
    std::sort(u.waits_on.begin(), u.waits_on.end());
    u.waits_on.erase(std::unique(u.waits_on.begin(), u.waits_on.end()), u.waits_on.end());
    for (const std::size_t j : u.waits_on) {
      const bool same_lane = u.board && units[j].board;
      u.stage = std::max(u.stage, units[j].stage + (same_lane ? 0 : 1));
    }
    if (u.board) previous_board = i;
  }
  return units;
}

std::size_t stage_count(const std::vector<Unit>& units) {
  std::size_t n = 0;
  for (const auto& u : units) n = std::max(n, u.stage + 1);
  return n;
}

int max_threads(const std::vector<Unit>& units) {
  int n = 1;
  for (const auto& u : units) n = std::max(n, u.threads);
  return n;
}

std::size_t find_unit(const std::vector<PlannedStep>& steps, std::string_view name) {
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].id == name) return i;
  }
  std::size_t index = 0;
  const auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), index);
  if (error == std::errc() && end == name.data() + name.size() && !name.empty() &&
      index < steps.size()) {
    return index;
  }
  throw std::invalid_argument("no unit \"" + std::string(name) + "\" in this run: give a step id " +
                              "or its position 0.." + std::to_string(steps.size() - 1) +
                              " (`metaplast campaign status DIR` lists them)");
}

std::string format_units(const std::vector<PlannedStep>& steps, const std::vector<Unit>& units) {
  std::ostringstream out;
  const std::size_t stages = stage_count(units);
  std::size_t board_units = 0;
  for (const auto& u : units) board_units += u.board;
  out << "work units: " << units.size() << " in " << stages << " stage" << (stages == 1 ? "" : "s")
      << " (a stage's units can run at once once the stages before "
      << "it are done)";
  if (board_units > 0) {
    out << "; " << board_units << " in the board lane (one at a time, in plan order)";
  }
  out << "\n";
  for (std::size_t s = 0; s < stages; ++s) {
    out << "  stage " << s << ":\n";
    for (const auto& u : units) {
      if (u.stage != s) continue;
      out << "    " << u.index << "  " << steps[u.index].id << (u.board ? "  [board]" : "");
      if (u.threads > 1) out << "  " << u.threads << " threads";
      if (steps[u.index].type == "report" && u.index > 0 && u.waits_on.size() >= u.index) {
        out << "  waits on every earlier unit";
      } else if (!u.waits_on.empty()) {
        out << "  waits on";
        for (const std::size_t j : u.waits_on) out << " " << j;
      }
      out << "\n";
    }
  }
  return out.str();
}

}  // namespace metaplast::campaign
