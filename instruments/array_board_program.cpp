// ArrayBoard::program_and_verify: the request checks and the counter snapshot, then one of two
// implementations: the board's PROGRAM_VERIFY opcode in batches within the frame size, or the
// host loop of docs/protocol.md 4.6 over RESET/SET/READ. Then reconcile_after_reboot(), which reads
// back what an interrupted operation left. Lifecycle and the simple operations are in
// array_board.cpp.
#include "instruments/array_board.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>

#include "instruments/array_board_detail.hpp"

namespace metaplast::instruments {

namespace p = metaplast::protocols;

ProgramReport ArrayBoard::program_and_verify(const std::vector<ProgramTarget>& targets,
                                             const ProgramOptions& options) {
  std::lock_guard lock(mutex_);
  require({BoardState::active}, "program_and_verify");
  std::vector<Cell> cells(targets.size());
  for (std::size_t i = 0; i < targets.size(); ++i) {
    cells[i] = targets[i].cell;
    check_level(targets[i].level, true, "program_and_verify");
  }
  check_cells(cells, "program_and_verify");
  if (options.max_attempts == 0) {
    throw std::invalid_argument("program_and_verify: max_attempts must be >= 1");
  }
  if (options.max_attempts > limits_.max_pulses_per_verify) {
    throw LimitError("program_and_verify: max_attempts = " + std::to_string(options.max_attempts) +
                     " exceeds the station limit max_pulses_per_verify = " +
                     std::to_string(limits_.max_pulses_per_verify) + " (" + limits_.station_name +
                     ")");
  }
  if (options.max_attempts >
      std::min<std::uint32_t>(info_.limits.max_attempts, p::kMaxAttemptsLimit)) {
    throw LimitError(
        "program_and_verify: max_attempts = " + std::to_string(options.max_attempts) +
        " exceeds the board's limit of " +
        std::to_string(std::min<std::uint32_t>(info_.limits.max_attempts, p::kMaxAttemptsLimit)));
  }
  if (!(options.band_us > 0) || options.band_us > 655.0) {
    throw std::invalid_argument("program_and_verify: band_us must be in (0, 655] uS, got " +
                                std::to_string(options.band_us));
  }
  auto implementation = options.implementation;
  if (implementation == VerifyImplementation::automatic) {
    implementation =
        info_.has_program_verify() ? VerifyImplementation::board : VerifyImplementation::host;
  }
  if (implementation == VerifyImplementation::board && !info_.has_program_verify()) {
    throw BoardError("board at " + address_ + " has no PROGRAM_VERIFY opcode (firmware " +
                     info_.firmware_version + "); use the host implementation");
  }
  BatchRecord record;
  record.targets = targets;
  record.options = options;
  record.options.progress = nullptr;
  record.implementation = implementation;
  if (targets.empty()) return {{}, implementation};
  in_flight_ = &record;
  struct ClearInFlight {
    BatchRecord*& slot;
    ~ClearInFlight() { slot = nullptr; }
  } clear{in_flight_};
  if (options.snapshot_counters && info_.has(p::capability::kCounters)) {
    std::vector<std::uint16_t> indices;
    for (const auto& c : cells) indices.push_back(index_of(c));
    for (std::size_t offset = 0; offset < indices.size(); offset += p::kMaxListCells) {
      const auto n = std::min(p::kMaxListCells, indices.size() - offset);
      auto part = read_counters(
          p::Selection::list({indices.begin() + offset, indices.begin() + offset + n}), {});
      record.counters_before.insert(record.counters_before.end(), part.begin(), part.end());
    }
  }
  auto report = implementation == VerifyImplementation::board
                    ? program_and_verify_on_board(targets, options, record)
                    : program_and_verify_on_host(targets, options, record);
  report.used = implementation;
  return report;
}

ProgramReport ArrayBoard::program_and_verify_on_board(const std::vector<ProgramTarget>& targets,
                                                      const ProgramOptions& options,
                                                      BatchRecord& record) {
  const bool trace = options.trace && info_.has(p::capability::kTrace);
  // Reply: 15 + 3 per entry (+ trace, which the board truncates to fit).
  const std::size_t chunk = program_verify_entries_per_request(info_.max_payload_bytes);
  const auto tolerance = p::tolerance_us_x100(options.band_us);
  ProgramReport report;
  report.cells.resize(targets.size());
  for (std::size_t i = 0; i < targets.size(); ++i) {
    report.cells[i].cell = targets[i].cell;
    report.cells[i].target_level = targets[i].level;
  }
  std::vector<std::size_t> order(targets.size());  // targets still to send, in order
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::size_t pos = 0, batch_base = 0, confirmed = 0;
  auto batch_id = new_batch_id();
  record.batch_ids.push_back(batch_id);
  while (pos < order.size()) {
    const auto n = std::min(chunk, order.size() - pos);
    p::ProgramVerifyRequest request;
    request.batch = {batch_id, static_cast<std::uint32_t>(pos - batch_base),
                     static_cast<std::uint32_t>(order.size() - batch_base)};
    request.options = trace ? p::program_verify_options::kTrace : 0;
    request.expected_boot_id = info_.boot_id;  // a resend after a reset is refused, not re-run
    for (std::size_t i = 0; i < n; ++i) {
      const auto& t = targets[order[pos + i]];
      request.entries.push_back(
          {index_of(t.cell), t.level, static_cast<std::uint8_t>(options.max_attempts), tolerance});
    }
    p::ProgramVerifyResponse reply;
    try {
      reply = call<p::ProgramVerifyResponse>(
          request, "program_and_verify",
          execution_allowance(n * options.max_attempts, n * (options.max_attempts + 1)));
    } catch (const BoardStatusError& e) {
      // An unformed cell refuses the chunk before anything runs: report it, go on without it.
      if (e.status() != p::Status::kNotFormed || e.detail() >= n) throw;
      report.cells[order[pos + e.detail()]].not_formed = true;
      ++confirmed;
      order.erase(order.begin() + static_cast<std::ptrdiff_t>(pos + e.detail()));
      batch_base = pos;
      batch_id = new_batch_id();
      record.batch_ids.push_back(batch_id);
      continue;
    }
    if (reply.results.size() != n || reply.batch_id != batch_id) {
      throw BoardError("board at " + address_ + " answered PROGRAM_VERIFY with " +
                       std::to_string(reply.results.size()) + " results for " + std::to_string(n) +
                       " entries");
    }
    for (std::size_t i = 0; i < n; ++i) {
      auto& result = report.cells[order[pos + i]];
      const auto& r = reply.results[i];
      result.final_code = r.code;
      result.final_conductance_us = code_to_conductance_us(r.code, reply.tia_range);
      result.attempts = r.attempts;
      result.passed = r.passed;
      record.confirmed.push_back(result);
    }
    for (const auto& e : reply.trace) {
      if (e.entry < n) report.cells[order[pos + e.entry]].trace.push_back(e.code);
    }
    pos += n;
    confirmed += n;
    record.cells_confirmed = confirmed;
    if (options.progress) options.progress(confirmed, targets.size());
  }
  return report;
}

ProgramReport ArrayBoard::program_and_verify_on_host(const std::vector<ProgramTarget>& targets,
                                                     const ProgramOptions& options,
                                                     BatchRecord& record) {
  // The reference loop of docs/protocol.md 4.6, run for all cells at once: each round applies
  // one pulse to every cell not yet in band (RESETs together, SETs grouped by level), then reads
  // them back. Per cell the pulses are exactly those the board's loop would choose.
  const std::size_t n = targets.size();
  std::vector<Cell> cells(n);
  for (std::size_t i = 0; i < n; ++i) cells[i] = targets[i].cell;
  ProgramReport report;
  report.cells.resize(n);
  auto first = read(cells);
  std::vector<std::size_t> pending;
  for (std::size_t i = 0; i < n; ++i) {
    auto& r = report.cells[i];
    r.cell = cells[i];
    r.target_level = targets[i].level;
    r.final_code = first[i].code;
    r.final_conductance_us = first[i].conductance_us;
    pending.push_back(i);
  }
  std::size_t finished = 0;
  while (!pending.empty()) {
    std::vector<Cell> resets;
    std::map<Level, std::vector<Cell>> sets;
    std::vector<std::size_t> pulsed;
    for (auto i : pending) {
      auto& r = report.cells[i];
      const auto level = targets[i].level;
      const auto band = verify_band(level, options.band_us);
      if (band.contains(r.final_conductance_us) || r.attempts >= options.max_attempts) {
        r.passed = band.contains(r.final_conductance_us);
        ++finished;
        continue;
      }
      if (band.pulse_for(r.final_conductance_us) == p::PulseKind::kReset) {
        resets.push_back(r.cell);
      } else {
        sets[level].push_back(r.cell);
      }
      ++r.attempts;
      pulsed.push_back(i);
    }
    if (pulsed.empty()) break;
    // Unformed cells refuse pulses: they leave the loop as failed, not formed.
    std::vector<Cell> refused;
    auto pulse_group = [&](const std::vector<Cell>& group, const Pulse& pulse, const char* what) {
      std::vector<std::size_t> unformed;
      apply_pulses(group, pulse, what, &record.batch_ids, &unformed);
      for (auto u : unformed) refused.push_back(group[u]);
    };
    if (!resets.empty()) {
      pulse_group(resets, Pulse{p::Opcode::kReset, 0, {}, settings_.reset_pulse_width_ns},
                  "program_and_verify (host reset)");
    }
    for (const auto& [level, group] : sets) {
      pulse_group(group, Pulse{p::Opcode::kSet, level, {}, settings_.set_pulse_width_ns},
                  "program_and_verify (host set)");
    }
    if (!refused.empty()) {
      std::erase_if(pulsed, [&](std::size_t i) {
        auto& r = report.cells[i];
        if (std::find(refused.begin(), refused.end(), r.cell) == refused.end()) return false;
        r.not_formed = true;
        r.passed = false;
        --r.attempts;
        ++finished;
        return true;
      });
      if (pulsed.empty()) break;
    }
    std::vector<Cell> verify(pulsed.size());
    for (std::size_t k = 0; k < pulsed.size(); ++k) verify[k] = cells[pulsed[k]];
    const auto readings = read(verify);
    for (std::size_t k = 0; k < pulsed.size(); ++k) {
      auto& r = report.cells[pulsed[k]];
      r.final_code = readings[k].code;
      r.final_conductance_us = readings[k].conductance_us;
      if (options.trace) r.trace.push_back(readings[k].code);
    }
    pending = std::move(pulsed);
    if (options.progress) options.progress(finished, n);
  }
  record.cells_confirmed = n;
  record.confirmed = report.cells;
  if (options.progress) options.progress(n, n);
  return report;
}

// ---------------------------------------------------------------------------------------------
// Reconciliation after a reboot

Reconciliation reconcile_after_reboot(ArrayBoard& board, const BatchRecord& record,
                                      const BoardSettings& settings) {
  board.identify();
  board.configure(settings);
  board.activate();
  Reconciliation out;
  for (auto id : record.batch_ids) out.batches.emplace_back(id, board.batch_status(id));
  std::vector<Cell> cells;
  for (const auto& t : record.targets) cells.push_back(t.cell);
  const auto readings = board.read(cells);
  std::vector<CellCounters> counters;
  if (board.info().has(p::capability::kCounters)) counters = board.counters(cells);
  for (std::size_t i = 0; i < cells.size(); ++i) {
    ReconciledCell rc;
    rc.target = record.targets[i];
    rc.reading = readings[i];
    if (!counters.empty()) rc.counters = counters[i];
    rc.counters.cell = cells[i];
    rc.in_band = board.verify_band(rc.target.level, record.options.band_us)
                     .contains(rc.reading.conductance_us);
    if (i < record.counters_before.size() && !counters.empty()) {
      rc.pulses_during_operation =
          counters[i].programming_operations() - record.counters_before[i].programming_operations();
    }
    if (!rc.in_band) out.remaining.push_back(rc.target);
    out.cells.push_back(rc);
  }
  return out;
}

}  // namespace metaplast::instruments
