// agora supervise -- COMMAND...: keeps one process running. It restarts the command when it
// exits (after 1s, doubling to 30s while it keeps failing quickly), and stops it on SIGTERM or
// SIGINT. `agora up --ha` runs each master under it: a master that loses leadership exits, and
// comes back as a contender. An agora command it runs is stopped (SIGTERM) if the supervisor
// itself dies.

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <iostream>

#include "cli/commands.hpp"
#include "common/process.hpp"
#include "common/time.hpp"

namespace agora::cli {

int superviseCommand(int argc, const char* const* argv) {
  std::vector<std::string> command;
  bool seenDashes = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (!seenDashes && (arg == "--help" || arg == "-h")) {
      std::cout << "Usage: agora supervise -- COMMAND [ARGS...]\n\nRuns COMMAND, restarts it "
                   "when it exits, stops it on SIGTERM or SIGINT.\n";
      return 0;
    }
    if (!seenDashes && arg == "--") {
      seenDashes = true;
      continue;
    }
    command.push_back(arg);
  }
  if (command.empty()) {
    std::cerr << "agora supervise: no command (agora supervise -- COMMAND ...)\n";
    return 2;
  }

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, nullptr);

  Duration backoff = seconds(1);
  while (true) {
    SpawnOptions spawn;
    spawn.argv = command;
    spawn.env = currentEnvironment();
    // An agora command under supervision goes with its supervisor (cli/main.cpp) instead of
    // running on as an orphan that nothing restarts or stops.
    spawn.env["AGORA_SUPERVISOR_PID"] = std::to_string(::getpid());
    spawn.stdinPath = "/dev/null";
    auto started = std::chrono::steady_clock::now();
    auto pid = spawnProcess(spawn);
    if (!pid) {
      std::cerr << "agora supervise: " << pid.error() << "\n";
      return 1;
    }
    // Wait for the child to exit, or for a signal to stop.
    while (true) {
      siginfo_t info;
      int sig = sigwaitinfo(&set, &info);
      if (sig == SIGTERM || sig == SIGINT) {
        ::kill(*pid, SIGTERM);
        int status;
        for (int i = 0; i < 150 && ::waitpid(*pid, &status, WNOHANG) == 0; ++i) {
          struct timespec tick = {0, 100 * 1000 * 1000};
          nanosleep(&tick, nullptr);  // the child's own shutdown, up to 15s
        }
        ::kill(*pid, SIGKILL);
        ::waitpid(*pid, &status, 0);
        return 0;
      }
      int status = 0;
      if (sig == SIGCHLD && ::waitpid(*pid, &status, WNOHANG) == *pid) {
        std::cerr << "agora supervise: " << command[0] << " " << describeWaitStatus(status)
                  << "; restarting" << std::endl;
        break;
      }
    }
    if (std::chrono::steady_clock::now() - started > seconds(60)) {
      backoff = seconds(1);
    }
    // Wait out the back-off, unless told to stop meanwhile.
    struct timespec wait = {static_cast<time_t>(toSeconds(backoff)), 0};
    siginfo_t info;
    int sig = sigtimedwait(&set, &info, &wait);
    if (sig == SIGTERM || sig == SIGINT) {
      return 0;
    }
    backoff = std::min<Duration>(backoff * 2, seconds(30));
  }
}

}  // namespace agora::cli
