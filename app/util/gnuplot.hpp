// gnuplot, the one plotting tool of the reports: strings quoted for its script language and the
// program run without a shell (app/util/process.hpp) in the folder of its script, so every
// script names its data and output files relative to its own folder and `gnuplot NAME.gp` run
// there by hand draws the same picture (docs/run-records.md "Plots").
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

namespace metaplast::util {

// `text` as a gnuplot single-quoted string literal, quotes included: ' is doubled, and line
// breaks (which would end the command and start a new one) become spaces. Inside single quotes
// gnuplot expands nothing (no backquote command substitution, no @macros, no backslash
// escapes), so any board serial, path or title is inert.
std::string gnuplot_quote(std::string_view text);

// Same, for a title or label shown with the `enhanced` text mode: also escapes the characters
// the mode reads as markup (^ _ @ & ~ { }), so "bob_run" is not drawn as a subscript.
std::string gnuplot_quote_text(std::string_view text);

// Runs `gnuplot SCRIPT` with `script`'s folder as the working directory. Returns "" when gnuplot
// exited with status 0, else one message that names the script and says what went wrong
// (gnuplot not installed: how to install it; failed: its stderr; hung: killed after `timeout`).
std::string run_gnuplot(const std::filesystem::path& script,
                        std::chrono::seconds timeout = std::chrono::seconds(300));

// True when gnuplot is on PATH.
bool gnuplot_installed();

}  // namespace metaplast::util
