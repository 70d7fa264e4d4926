// Ctrl-C for the long-running commands (train, campaign): the first SIGINT (or SIGTERM) asks to
// stop after the epoch in progress and its checkpoint, the second to abort after the training
// step or board batch in flight, the third kills (default action). The flags feed
// learning::RunControl and campaign::Interrupts; the board goes safe through its RAII owners.
#pragma once

#include <signal.h>

#include <atomic>

namespace metaplast::cli {

class InterruptHandler {
 public:
  // What the first signal stops after (its message says so): a training's epoch and
  // checkpoint, or a measurement's batch in flight.
  // `quit`: a command with nothing to finish (a viewer) just quits.
  enum class Stops { after_epoch, after_batch, quit };
  // Clears both flags and installs the handler for SIGINT and SIGTERM.
  explicit InterruptHandler(Stops stops = Stops::after_epoch);
  // Restores the previous handlers.
  ~InterruptHandler();
  InterruptHandler(const InterruptHandler&) = delete;
  InterruptHandler& operator=(const InterruptHandler&) = delete;

  // Set by the first signal: stop after the current epoch's checkpoint.
  static const std::atomic<bool>& stop_requested();
  // Set by the second signal: abort after the step in flight.
  static const std::atomic<bool>& abort_requested();
  // What a first signal does, asked from elsewhere (the live view's stop action, any thread):
  // sets stop_requested() and says so on stderr. A second request changes nothing.
  static void request_stop();

 private:
  struct sigaction previous_int_ {
  }, previous_term_{};
};

// The exit status of a command stopped by Ctrl-C (128 + SIGINT), as a shell reports it.
inline constexpr int kInterruptedExitStatus = 130;

}  // namespace metaplast::cli
