#pragma once

// Runs a command on a pseudo-terminal of a given size, as a person at a terminal would: it waits
// for each expected text in the output and then types the answer. For `kubectl exec -it` and
// `agora ssh`.

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/process.hpp"
#include "common/time.hpp"
#include "tests/support/process_cluster.hpp"

namespace agora::testing {

struct TerminalStep {
  std::string expect;  // wait until the output (since the last step) has this
  std::string type;    // then type this
};

// The exit code (-1: killed at `timeout`) and everything the terminal showed.
inline CommandResult runInTerminal(const std::vector<std::string>& argv,
                                   const std::map<std::string, std::string>& extraEnv,
                                   const std::vector<TerminalStep>& steps, int rows, int cols,
                                   Duration timeout = seconds(60)) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::map<std::string, std::string> env = currentEnvironment();
  for (const auto& [k, v] : extraEnv) env[k] = v;
  std::vector<std::string> envStrings;
  for (const auto& [k, v] : env) envStrings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (std::string& e : envStrings) envp.push_back(e.data());
  envp.push_back(nullptr);
  winsize size{};
  size.ws_row = static_cast<unsigned short>(rows);
  size.ws_col = static_cast<unsigned short>(cols);
  CommandResult result;
  int master = -1;
  pid_t pid = ::forkpty(&master, nullptr, nullptr, &size);
  if (pid < 0) {
    result.output = "forkpty failed";
    return result;
  }
  if (pid == 0) {
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t step = 0;
  size_t seenFrom = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      char buffer[4096];
      ssize_t n = ::read(master, buffer, sizeof(buffer));
      if (n <= 0) break;  // EIO: the command and all it started are gone
      result.output.append(buffer, static_cast<size_t>(n));
    }
    if (step < steps.size()) {
      size_t at = result.output.find(steps[step].expect, seenFrom);
      if (at != std::string::npos) {
        seenFrom = at + steps[step].expect.size();
        (void)::write(master, steps[step].type.data(), steps[step].type.size());
        ++step;
      }
    }
  }
  int status = 0;
  if (std::chrono::steady_clock::now() >= deadline) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  } else {
    ::waitpid(pid, &status, 0);
    if (WIFEXITED(status)) result.exitCode = WEXITSTATUS(status);
  }
  ::close(master);
  return result;
}

}  // namespace agora::testing
