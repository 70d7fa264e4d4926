// metaplast._metaplast: the extension behind `import metaplast` (docs/python.md).
#include "app/board/board_session.hpp"
#include "python/src/bindings.hpp"

PYBIND11_MODULE(_metaplast, m) {
  m.doc() =
      "metaplast's C++ core: boards (Board), training runs (Training) and the errors. Import "
      "the package metaplast, not this module.";
  metaplast::board::register_sim_scheme();
  metaplast::python::bind_errors(m);
  metaplast::python::bind_board(m);
  metaplast::python::bind_runs(m);
  metaplast::python::bind_campaigns(m);
  m.attr("__version__") = METAPLAST_VERSION;
}
