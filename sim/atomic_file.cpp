#include "sim/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace metaplast::sim {

void write_file_atomically(const std::filesystem::path& path, std::string_view bytes) {
  const std::filesystem::path temporary =
      path.string() + ".tmp" + std::to_string(static_cast<long>(::getpid()));
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::runtime_error(path.string() + ": cannot write (" + std::strerror(errno) +
                             "); check that the directory exists and is writable");
  }
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      ::unlink(temporary.c_str());
      throw std::runtime_error(path.string() + ": write failed (" + std::strerror(error) + ")");
    }
    done += static_cast<std::size_t>(n);
  }
  // No fsync: the rename is atomic against a killed process (the page cache survives kill -9);
  // a power cut of the host may lose the last state, as documented.
  ::close(fd);
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    throw std::runtime_error(path.string() + ": rename failed (" + std::strerror(error) + ")");
  }
}

}  // namespace metaplast::sim
