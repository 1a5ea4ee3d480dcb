#include "common/process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

extern char** environ;

namespace agora {

Result<pid_t> spawnProcess(const SpawnOptions& options) {
  if (options.argv.empty()) {
    return Error("no program to start");
  }
  // Everything the child needs is built before the spawn.
  std::vector<char*> argv;
  for (const std::string& a : options.argv) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  std::vector<std::string> envStrings;
  for (const auto& [k, v] : options.env) {
    envStrings.push_back(k + "=" + v);
  }
  std::vector<char*> envp;
  for (std::string& e : envStrings) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);

  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (options.newSession) {
    flags |= POSIX_SPAWN_SETSID;
  } else if (options.newProcessGroup) {
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&attr, 0);
  }
  posix_spawnattr_setflags(&attr, flags);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  sigset_t defaults;
  sigfillset(&defaults);
  sigdelset(&defaults, SIGKILL);
  sigdelset(&defaults, SIGSTOP);
  posix_spawnattr_setsigdefault(&attr, &defaults);

  if (!options.cwd.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, options.cwd.c_str());
  }
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, options.stdinPath.c_str(), O_RDONLY, 0);
  if (!options.stdoutPath.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, options.stdoutPath.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  if (!options.stderrPath.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, options.stderrPath.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  for (const auto& [parentFd, childFd] : options.passFds) {
    posix_spawn_file_actions_adddup2(&actions, parentFd, childFd);
  }

  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return Error("cannot start " + options.argv[0] + ": " + std::strerror(rc));
  }
  return pid;
}

std::map<std::string, std::string> currentEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    size_t eq = entry.find('=');
    if (eq != std::string::npos) {
      env[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
  }
  return env;
}

std::vector<ProcessInfo> listProcesses() {
  std::vector<ProcessInfo> out;
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) {
    return out;
  }
  while (dirent* entry = ::readdir(dir)) {
    const char* name = entry->d_name;
    if (name[0] < '0' || name[0] > '9') {
      continue;
    }
    std::ifstream stat(std::string("/proc/") + name + "/stat");
    std::string line;
    if (!std::getline(stat, line)) {
      continue;
    }
    // Fields after the command (which may contain spaces) start after the last ')'.
    size_t close = line.rfind(')');
    if (close == std::string::npos || close + 2 > line.size()) {
      continue;
    }
    std::istringstream rest(line.substr(close + 2));
    ProcessInfo info;
    long ppid, pgrp, session;
    if (!(rest >> info.state >> ppid >> pgrp >> session)) {
      continue;
    }
    info.pid = static_cast<pid_t>(std::atol(name));
    info.parent = static_cast<pid_t>(ppid);
    info.session = static_cast<pid_t>(session);
    out.push_back(info);
  }
  ::closedir(dir);
  return out;
}

std::vector<pid_t> processesInSession(pid_t sid) {
  std::vector<pid_t> out;
  for (const ProcessInfo& p : listProcesses()) {
    if (p.session == sid && p.state != 'Z') {
      out.push_back(p.pid);
    }
  }
  return out;
}

int signalSession(pid_t sid, int signal) {
  if (sid <= 1) {
    return 0;  // never the whole machine
  }
  int n = 0;
  for (pid_t pid : processesInSession(sid)) {
    if (::kill(pid, signal) == 0) {
      ++n;
    }
  }
  return n;
}

std::pair<uid_t, gid_t> processUser(pid_t pid) {
  std::pair<uid_t, gid_t> ids{0, 0};
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    std::istringstream fields(line);
    std::string key;
    unsigned long real = 0;
    if (!(fields >> key >> real)) continue;
    if (key == "Uid:") ids.first = static_cast<uid_t>(real);
    if (key == "Gid:") ids.second = static_cast<gid_t>(real);
  }
  return ids;
}

bool processAlive(pid_t pid) {
  if (pid <= 0) {
    return false;
  }
  if (::kill(pid, 0) != 0 && errno == ESRCH) {
    return false;
  }
  // A zombie is not alive.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) {
    return false;
  }
  size_t close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'Z';
}

uint64_t processStartTicks(pid_t pid) {
  if (pid <= 0) {
    return 0;
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) {
    return 0;
  }
  size_t close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) {
    return 0;
  }
  // After the command: state (field 3) ... starttime (field 22).
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  uint64_t start = 0;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 3 && field == "Z") {
      return 0;
    }
    if (i == 22) {
      start = std::strtoull(field.c_str(), nullptr, 10);
    }
  }
  return start;
}

std::string selfExecutable() {
  char buffer[4096];
  ssize_t n = ::readlink("/proc/self/exe", buffer, sizeof(buffer) - 1);
  if (n <= 0) {
    return "";
  }
  return std::string(buffer, static_cast<size_t>(n));
}

int blockSignalsToFd(const std::vector<int>& signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) {
    sigaddset(&set, s);
  }
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  return fd;
}

std::string describeWaitStatus(int status) {
  if (status == kUnknownWaitStatus) {
    return "exited (its status is unknown: it was started by an earlier run of the agent)";
  }
  if (WIFEXITED(status)) {
    return "exited with status " + std::to_string(WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = strsignal(sig);
    return "killed by signal " + std::to_string(sig) + (name ? std::string(" (") + name + ")" : "");
  }
  return "ended with wait status " + std::to_string(status);
}

}  // namespace agora
