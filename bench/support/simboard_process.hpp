// A metaplast-simboard child process for the benchmarks: started with `args`, its address (the
// first line it prints) read from its stdout, terminated (SIGTERM) when this object ends.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace metaplast::bench {

struct SimboardProcess {
  pid_t pid = -1;
  std::string address;
  // Throws std::runtime_error when the pipe cannot be made or the process prints no address.
  SimboardProcess(const std::string& exe, const std::vector<std::string>& args) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
    pid = fork();
    if (pid == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      std::vector<char*> argv{const_cast<char*>(exe.c_str())};
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(exe.c_str(), argv.data());
      _exit(127);
    }
    close(fds[1]);
    char c;
    while (read(fds[0], &c, 1) == 1 && c != '\n') address.push_back(c);
    close(fds[0]);
    if (address.empty())
      throw std::runtime_error("metaplast-simboard did not start (printed no address): " + exe);
  }
  ~SimboardProcess() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
    }
  }
  SimboardProcess(const SimboardProcess&) = delete;
  SimboardProcess& operator=(const SimboardProcess&) = delete;
};

}  // namespace metaplast::bench
