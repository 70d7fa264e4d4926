#include "common/byte_io.hpp"

#include <stdexcept>

namespace metaplast::common {

void ByteReader::report(const ByteReadError& error) const {
  if (on_error_) on_error_(error);
  // Only reached with an error function that returns: never read on after a failure.
  throw std::logic_error("common::ByteReader: read failed at byte " + std::to_string(error.offset) +
                         " and the error function did not throw");
}

}  // namespace metaplast::common
