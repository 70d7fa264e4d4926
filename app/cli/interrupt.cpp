#include "app/cli/interrupt.hpp"

#include <unistd.h>

#include <cstring>

namespace metaplast::cli {

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_abort{false};
// The first signal's message, set before the handler is installed (a string literal).
std::atomic<const char*> g_first_message{nullptr};

void write_stderr(const char* text) {
  const ssize_t ignored = ::write(STDERR_FILENO, text, std::strlen(text));
  (void)ignored;
}

// Async-signal-safe: atomics and write(2) only.
extern "C" void on_interrupt(int) {
  if (!g_stop.exchange(true)) {
    write_stderr(g_first_message.load());
  } else if (!g_abort.exchange(true)) {
    write_stderr("\nmetaplast: Ctrl-C again: aborting after the step in flight\n");
  } else {
    ::signal(SIGINT, SIG_DFL);
  }
}

}  // namespace

InterruptHandler::InterruptHandler(Stops stops) {
  switch (stops) {
    case Stops::after_batch:
      g_first_message =
          "\nmetaplast: Ctrl-C: stopping after the batch in flight; what was measured is "
          "written (Ctrl-C again to abort now)\n";
      break;
    case Stops::after_epoch:
      g_first_message =
          "\nmetaplast: Ctrl-C: stopping after the current epoch's checkpoint (Ctrl-C again "
          "to abort now)\n";
      break;
    case Stops::quit:
      g_first_message = "\nmetaplast: Ctrl-C: quitting\n";
      break;
  }
  g_stop = false;
  g_abort = false;
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &previous_int_);
  sigaction(SIGTERM, &sa, &previous_term_);  // a polite kill stops like Ctrl-C
}

InterruptHandler::~InterruptHandler() {
  sigaction(SIGINT, &previous_int_, nullptr);
  sigaction(SIGTERM, &previous_term_, nullptr);
}

const std::atomic<bool>& InterruptHandler::stop_requested() { return g_stop; }

void InterruptHandler::request_stop() {
  if (g_stop.exchange(true)) return;
  const char* message = g_first_message.load();
  if (message != nullptr) write_stderr(message);
}
const std::atomic<bool>& InterruptHandler::abort_requested() { return g_abort; }

}  // namespace metaplast::cli
