#include "agent/remote_command.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <grp.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include <nlohmann/json.hpp>

#include "common/flags.hpp"
#include "common/fs.hpp"
#include "common/net.hpp"
#include "common/process.hpp"
#include "common/task_files.hpp"
#include "common/websocket.hpp"
#include "isolators/cgroups.hpp"
#include "isolators/confine.hpp"

namespace agora::agent {

using json = nlohmann::json;

namespace {

constexpr const char* kV5 = "v5.channel.k8s.io";
constexpr const char* kV4 = "v4.channel.k8s.io";
constexpr const char* kPortForwardTunnel = "SPDY/3.1+portforward.k8s.io";
constexpr uint8_t kStdin = 0;
constexpr uint8_t kStdout = 1;
constexpr uint8_t kStderr = 2;
constexpr uint8_t kError = 3;
constexpr uint8_t kResize = 4;
constexpr uint8_t kClose = 255;

bool truthy(const std::string& value) { return value == "true" || value == "1"; }

std::vector<std::string> environOf(pid_t pid) {
  std::string raw = readFile("/proc/" + std::to_string(pid) + "/environ").value_or("");
  std::vector<std::string> out;
  size_t at = 0;
  while (at < raw.size()) {
    size_t end = raw.find('\0', at);
    if (end == std::string::npos) end = raw.size();
    if (end > at) out.push_back(raw.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

}  // namespace

pid_t findTaskProcess(pid_t root, const std::string& task) {
  std::map<pid_t, std::vector<pid_t>> children;
  for (const ProcessInfo& p : listProcesses()) children[p.parent].push_back(p.pid);
  std::deque<pid_t> queue = {root};
  std::string wanted = "AGORA_TASK_ID=" + task;
  while (!queue.empty()) {
    pid_t pid = queue.front();
    queue.pop_front();
    for (const std::string& var : environOf(pid)) {
      if (var == wanted) return pid;
    }
    for (pid_t child : children[pid]) queue.push_back(child);
  }
  return 0;
}

namespace {

// Moves this process into the cgroups `target` is in (every hierarchy it can find).
void joinCgroupsOf(pid_t target) {
  auto layout = cgroups::detectLayout();
  std::string cgroupFile = readFile("/proc/" + std::to_string(target) + "/cgroup").value_or("");
  if (!layout) return;
  std::string self = std::to_string(::getpid());
  std::set<std::string> joined;
  std::istringstream lines(cgroupFile);
  std::string line;
  while (std::getline(lines, line)) {
    size_t first = line.find(':');
    size_t second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    std::string controllers = line.substr(first + 1, second - first - 1);
    std::string path = line.substr(second + 1);
    std::vector<std::string> mounts;
    if (controllers.empty()) {
      if (!layout->v2Mount.empty()) mounts.push_back(layout->v2Mount);
    } else {
      for (const std::string& c : splitList(controllers)) {
        auto mount = layout->v1Mounts.find(c);
        if (mount != layout->v1Mounts.end()) mounts.push_back(mount->second);
      }
    }
    for (const std::string& mount : mounts) {
      std::string procs = mount + path + "/cgroup.procs";
      if (joined.insert(procs).second) {
        std::ofstream(procs) << self;  // best effort: a hierarchy it cannot join is skipped
      }
    }
  }
}

// Whether `pid` shares this process's namespace of the kind `ns` ("mnt", "pid"...).
bool sameNamespace(pid_t pid, const char* ns) {
  struct stat mine {};
  struct stat theirs {};
  std::string name = std::string("/ns/") + ns;
  return ::stat(("/proc/self" + name).c_str(), &mine) == 0 &&
         ::stat(("/proc/" + std::to_string(pid) + name).c_str(), &theirs) == 0 &&
         mine.st_ino == theirs.st_ino && mine.st_dev == theirs.st_dev;
}

json exitStatus(int waitStatus) {
  int code = WIFEXITED(waitStatus) ? WEXITSTATUS(waitStatus)
                                   : (WIFSIGNALED(waitStatus) ? 128 + WTERMSIG(waitStatus) : 1);
  if (code == 0) return {{"metadata", json::object()}, {"status", "Success"}};
  return {{"metadata", json::object()},
          {"status", "Failure"},
          {"message", "command terminated with non-zero exit code: exit status " +
                          std::to_string(code)},
          {"reason", "NonZeroExitCode"},
          {"details", {{"causes", {{{"reason", "ExitCode"}, {"message", std::to_string(code)}}}}}}};
}

// One session: the client's socket on one side, the command's terminal or pipes on the other.
class Session {
 public:
  Session(int socket, RemoteCommand command) : socket_(socket), command_(std::move(command)) {}

  int run();

 private:
  Status start();
  bool sendFrame(uint8_t channel, std::string_view data);
  void sendClose(uint16_t code, const std::string& reason);
  // Handles what the client sent; false when the session is over.
  bool onClient(const websocket::Message& message);
  // Reads what the client sent (the socket is readable) and handles each whole message; false
  // when the client is gone or broke the protocol (it is sent a close then).
  bool readClient();
  // Handles the messages the decoder holds; false as readClient.
  bool handleMessages();
  // Writes what is pending for the command's stdin, as much as it takes now.
  void flushStdin();
  // Reads what the command wrote on `fd` (channel `channel`); false at its end.
  bool pump(int fd, uint8_t channel);
  void closeStdin();
  void killCommand();
  bool answerUpgrade();
  // Sends the outcome and closes, waiting a little for the client's close.
  void end(const json& outcome);
  // Attach: the task's output as it comes, until the task ends.
  int followOutput();

  int socket_;
  RemoteCommand command_;
  websocket::Decoder decoder_{true};
  pid_t child_ = -1;
  int terminal_ = -1;  // the pseudo-terminal's master side, with a TTY
  int in_ = -1;        // the command's stdin (the terminal, or a pipe)
  int out_ = -1;
  int err_ = -1;
  std::string pendingIn_;  // for the command's stdin, not yet taken
  bool stdinClosing_ = false;
};

Status Session::start() {
  pid_t target = 0;
  if (command_.containerPid > 0) {
    target = findTaskProcess(command_.containerPid, command_.task);
    if (target == 0) return Error("the container's process is not running");
  }
  std::vector<std::string> argv = command_.argv;
  std::map<std::string, std::string> env;
  // The task's namespaces, root and working directory, held open while this process changes.
  std::vector<int> namespaces;
  int root = -1;
  int cwd = -1;
  uid_t uid = 0;
  gid_t gid = 0;
  if (target > 0) {
    joinCgroupsOf(target);
    std::string proc = "/proc/" + std::to_string(target);
    for (const char* ns : {"ipc", "uts", "net", "mnt"}) {
      if (!sameNamespace(target, ns)) {
        int fd = ::open((proc + "/ns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return Error(std::string("cannot open the task's ") + ns + " namespace");
        namespaces.push_back(fd);
      }
    }
    root = ::open((proc + "/root").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cwd = ::open((proc + "/cwd").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return Error("cannot open the task's root directory");
    // The PID namespace is entered here: the children this process starts from now are in it.
    if (!sameNamespace(target, "pid")) {
      int pidNamespace = ::open((proc + "/ns/pid").c_str(), O_RDONLY | O_CLOEXEC);
      if (pidNamespace < 0 || ::setns(pidNamespace, CLONE_NEWPID) != 0) {
        return Error(std::string("cannot enter the task's PID namespace: ") +
                     std::strerror(errno));
      }
      ::close(pidNamespace);
    }
    std::tie(uid, gid) = processUser(target);
    for (const std::string& var : environOf(target)) {
      size_t eq = var.find('=');
      if (eq != std::string::npos) env[var.substr(0, eq)] = var.substr(eq + 1);
    }
  } else {
    env = {{"HOME", "/root"}, {"USER", "root"}, {"LOGNAME", "root"}, {"SHELL", "/bin/bash"}};
  }
  if (env.count("PATH") == 0) {
    env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  }
  if (command_.tty && env.count("TERM") == 0) env["TERM"] = "xterm";

  std::vector<std::string> envStrings;
  for (const auto& [k, v] : env) envStrings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (std::string& e : envStrings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);

  int inPipe[2] = {-1, -1};
  int outPipe[2] = {-1, -1};
  int errPipe[2] = {-1, -1};
  // The terminal's other side stays open here until the child has it: a master whose other
  // side is closed reads as ended.
  int slave = -1;
  if (command_.tty) {
    struct winsize size {};
    size.ws_row = 24;
    size.ws_col = 80;
    if (::openpty(&terminal_, &slave, nullptr, nullptr, &size) != 0) {
      return Error(std::string("cannot open a terminal: ") + std::strerror(errno));
    }
    ::fcntl(terminal_, F_SETFD, FD_CLOEXEC);
    ::fcntl(slave, F_SETFD, FD_CLOEXEC);
  } else if (::pipe2(inPipe, O_CLOEXEC) != 0 || ::pipe2(outPipe, O_CLOEXEC) != 0 ||
             ::pipe2(errPipe, O_CLOEXEC) != 0) {
    return Error(std::string("cannot make pipes: ") + std::strerror(errno));
  }
  child_ = ::fork();
  if (child_ < 0) return Error("cannot fork");
  if (child_ == 0) {
    ::setsid();
    if (command_.tty) {
      ::ioctl(slave, TIOCSCTTY, 0);
      ::dup2(slave, 0);
      ::dup2(slave, 1);
      ::dup2(slave, 2);
    } else {
      int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
      ::dup2(command_.withStdin ? inPipe[0] : null, 0);
      ::dup2(command_.withStdout ? outPipe[1] : null, 1);
      ::dup2(command_.withStderr ? errPipe[1] : null, 2);
    }
    auto fail = [](const char* why) {
      (void)::write(2, why, std::strlen(why));
      ::_exit(126);
    };
    if (target > 0) {
      // Into the task's namespaces, its root, its working directory, as its user.
      for (int fd : namespaces) {
        if (::setns(fd, 0) != 0) fail("agora: cannot enter the container's namespaces\n");
      }
      if (::fchdir(root) != 0 || ::chroot(".") != 0) fail("agora: cannot enter its root\n");
      if (cwd < 0 || ::fchdir(cwd) != 0) (void)::chdir("/");
      // As confined as the task itself (isolators/confine.hpp); this helper has no threads.
      if (!isolators::confineProcess()) fail("agora: cannot confine the command as its container is\n");
      if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) {
        fail("agora: cannot become the container's user\n");
      }
    } else if (::chdir("/root") != 0) {
      (void)::chdir("/");
    }
    ::signal(SIGPIPE, SIG_DFL);
    environ = envp.data();
    ::execvp(args[0], args.data());
    std::string why = "agora: cannot run " + argv[0] + ": " + std::strerror(errno) + "\n";
    (void)::write(2, why.data(), why.size());
    ::_exit(errno == ENOENT ? 127 : 126);
  }
  for (int fd : namespaces) ::close(fd);
  if (slave >= 0) ::close(slave);
  if (root >= 0) ::close(root);
  if (cwd >= 0) ::close(cwd);
  if (command_.tty) {
    in_ = command_.withStdin ? terminal_ : -1;
    out_ = terminal_;
  } else {
    ::close(inPipe[0]);
    ::close(outPipe[1]);
    ::close(errPipe[1]);
    in_ = inPipe[1];
    out_ = outPipe[0];
    err_ = errPipe[0];
    if (!command_.withStdin) {
      ::close(in_);
      in_ = -1;
    }
  }
  for (int fd : {in_, out_, err_}) {
    if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  return ok();
}

bool Session::sendFrame(uint8_t channel, std::string_view data) {
  std::string payload(1, static_cast<char>(channel));
  payload.append(data);
  return writeAll(socket_, websocket::encodeFrame(websocket::Opcode::kBinary, payload, false));
}

void Session::sendClose(uint16_t code, const std::string& reason) {
  (void)writeAll(socket_, websocket::encodeFrame(websocket::Opcode::kClose,
                                                websocket::closePayload(code, reason), false));
}

void Session::closeStdin() {
  if (in_ < 0) return;
  if (!pendingIn_.empty()) {
    stdinClosing_ = true;  // once what is pending is written
    return;
  }
  if (command_.tty) {
    in_ = -1;  // the terminal stays: it carries the output
  } else {
    ::close(in_);
    in_ = -1;
  }
}

bool Session::onClient(const websocket::Message& message) {
  using websocket::Opcode;
  switch (message.opcode) {
    case Opcode::kPing:
      return writeAll(socket_, websocket::encodeFrame(Opcode::kPong, message.payload, false));
    case Opcode::kPong:
      return true;
    case Opcode::kClose:
      sendClose(websocket::kNormalClosure, "");
      return false;
    default:
      break;
  }
  if (message.payload.empty()) return true;
  uint8_t channel = static_cast<uint8_t>(message.payload[0]);
  std::string_view data(message.payload);
  data.remove_prefix(1);
  if (channel == kStdin) {
    if (in_ >= 0 && !stdinClosing_) pendingIn_.append(data);
  } else if (channel == kResize && terminal_ >= 0) {
    json size = json::parse(data, nullptr, false);
    if (size.is_object()) {
      struct winsize ws {};
      ws.ws_col = static_cast<unsigned short>(size.value("Width", 80));
      ws.ws_row = static_cast<unsigned short>(size.value("Height", 24));
      ::ioctl(terminal_, TIOCSWINSZ, &ws);
    }
  } else if (channel == kClose && command_.protocol == kV5 && !data.empty() &&
             static_cast<uint8_t>(data[0]) == kStdin) {
    closeStdin();
  }
  return true;
}

bool Session::pump(int fd, uint8_t channel) {
  char buffer[32 * 1024];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n > 0) {
      if (!sendFrame(channel, std::string_view(buffer, static_cast<size_t>(n)))) return false;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    return false;  // the end (EIO on a terminal whose other side is closed)
  }
}

void Session::killCommand() {
  if (child_ > 0) {
    signalSession(child_, SIGHUP);
    signalSession(child_, SIGKILL);
  }
}

bool Session::answerUpgrade() {
  std::string head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                     websocket::acceptKey(command_.key) +
                     "\r\nSec-WebSocket-Protocol: " + command_.protocol + "\r\n\r\n";
  return writeAll(socket_, head);
}

void Session::end(const json& outcome) {
  sendFrame(kError, outcome.dump());
  sendClose(websocket::kNormalClosure, "");
  ::shutdown(socket_, SHUT_WR);
  // The client answers the close and hangs up; waiting for it keeps the last bytes from being
  // lost to a reset.
  pollfd p{socket_, POLLIN, 0};
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  char sink[4096];
  while (std::chrono::steady_clock::now() < until && ::poll(&p, 1, 100) >= 0) {
    if ((p.revents & POLLIN) != 0 && ::read(socket_, sink, sizeof(sink)) <= 0) break;
  }
}

int Session::followOutput() {
  pid_t target = findTaskProcess(command_.containerPid, command_.task);
  uint64_t started = processStartTicks(target);
  int file = ::open(command_.follow.c_str(), O_RDONLY | O_CLOEXEC);
  if (target == 0 || started == 0 || file < 0) {
    (void)writeAll(socket_, statusAnswer(404, "NotFound", "the container is not running"));
    return 1;
  }
  ::lseek(file, 0, SEEK_END);
  if (command_.withStdin) {
    // The task's stdin pipe, when it has one (its pod asked for stdin).
    std::string sandbox = command_.follow.substr(0, command_.follow.rfind('/'));
    in_ = ::open((sandbox + "/stdin").c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    // Announced: a task with stdin=once reads its end once this writer has gone.
    if (in_ >= 0) (void)writeFileAtomic(sandbox + "/" + kStdinAttached, "");
  }
  if (!answerUpgrade()) return 1;
  bool clientOpen = true;
  auto readNew = [&] {
    char buffer[32 * 1024];
    ssize_t n;
    while ((n = ::read(file, buffer, sizeof(buffer))) > 0) {
      if (!sendFrame(kStdout, std::string_view(buffer, static_cast<size_t>(n)))) return false;
    }
    return true;
  };
  bool taskEnded = false;
  while (clientOpen) {
    pollfd p{socket_, POLLIN, 0};
    if (::poll(&p, 1, 200) > 0) clientOpen = readClient();
    flushStdin();
    if (!clientOpen || !readNew()) break;
    if (processStartTicks(target) != started) {
      readNew();
      taskEnded = true;
      break;
    }
  }
  ::close(file);
  if (in_ >= 0) ::close(in_);
  if (taskEnded) end({{"metadata", json::object()}, {"status", "Success"}});
  return 0;
}

bool Session::readClient() {
  char buffer[32 * 1024];
  ssize_t n = ::read(socket_, buffer, sizeof(buffer));
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) return false;
  decoder_.feed(std::string_view(buffer, static_cast<size_t>(n)));
  return handleMessages();
}

bool Session::handleMessages() {
  while (true) {
    auto next = decoder_.next();
    if (!next) {
      sendClose(decoder_.errorCode(), next.error());
      return false;
    }
    if (!next->has_value()) return true;
    if (!onClient(**next)) return false;
  }
}

void Session::flushStdin() {
  if (in_ < 0 || pendingIn_.empty()) return;
  ssize_t n = ::write(in_, pendingIn_.data(), pendingIn_.size());
  if (n > 0) {
    pendingIn_.erase(0, static_cast<size_t>(n));
  } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
    pendingIn_.clear();  // the command closed its stdin
  }
  if (pendingIn_.empty() && stdinClosing_) {
    stdinClosing_ = false;
    closeStdin();
  }
}

int Session::run() {
  if (!command_.follow.empty()) {
    return followOutput();
  }
  if (Status started = start(); !started) {
    (void)writeAll(socket_, statusAnswer(404, "NotFound", started.error()));
    return 1;
  }
  if (!answerUpgrade()) {
    killCommand();
    return 1;
  }
  bool clientOpen = true;
  bool outOpen = true;
  bool errOpen = err_ >= 0;
  int waitStatus = 0;
  bool exited = false;
  while (clientOpen && !exited) {
    std::vector<pollfd> fds;
    fds.push_back({socket_, POLLIN, 0});
    if (outOpen) fds.push_back({out_, POLLIN, 0});
    if (errOpen) fds.push_back({err_, POLLIN, 0});
    bool wantWrite = in_ >= 0 && !pendingIn_.empty();
    if (wantWrite) fds.push_back({in_, POLLOUT, 0});
    int ready = ::poll(fds.data(), fds.size(), 100);
    if (ready < 0 && errno != EINTR) break;
    for (const pollfd& p : fds) {
      if (p.revents == 0) continue;
      if (p.fd == socket_) {
        if (!(clientOpen = readClient())) break;
      } else if (p.events & POLLOUT) {
        flushStdin();
      } else if (p.fd == out_ && outOpen) {
        outOpen = pump(out_, kStdout);
      } else if (p.fd == err_ && errOpen) {
        errOpen = pump(err_, kStderr);
      }
    }
    if (::waitpid(child_, &waitStatus, WNOHANG) == child_) exited = true;
  }
  if (!exited) {
    // The client left (or broke the protocol) first.
    killCommand();
    ::waitpid(child_, &waitStatus, 0);
    return 0;
  }
  // What the command wrote last, then how it ended. Anything it left running in the
  // background may hold the output open: it gets a moment, not more.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  while ((outOpen || errOpen) && std::chrono::steady_clock::now() < deadline) {
    std::vector<pollfd> fds;
    if (outOpen) fds.push_back({out_, POLLIN, 0});
    if (errOpen) fds.push_back({err_, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), 50) <= 0) {
      if (command_.tty) break;  // a terminal with nothing more to read
      continue;
    }
    for (const pollfd& p : fds) {
      if (p.revents == 0) continue;
      if (p.fd == out_) outOpen = pump(out_, kStdout);
      if (p.fd == err_) errOpen = pump(err_, kStderr);
    }
  }
  end(exitStatus(waitStatus));
  killCommand();  // what it left in the background
  return 0;
}

}  // namespace

std::vector<std::string> RemoteCommand::toArgs() const {
  std::vector<std::string> out = {"--key=" + key, "--protocol=" + protocol,
                                  "--container_pid=" + std::to_string(containerPid),
                                  "--task=" + task};
  if (tty) out.push_back("--tty");
  if (withStdin) out.push_back("--stdin");
  if (!withStdout) out.push_back("--no_stdout");
  if (!withStderr) out.push_back("--no_stderr");
  if (!follow.empty()) out.push_back("--follow=" + follow);
  if (kind == Kind::kPortForward) out.push_back("--port_forward");
  out.push_back("--");
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

Result<RemoteCommand> RemoteCommand::fromArgs(const std::vector<std::string>& args) {
  RemoteCommand c;
  size_t i = 0;
  for (; i < args.size() && args[i] != "--"; ++i) {
    const std::string& a = args[i];
    auto value = [&](const char* prefix) -> std::optional<std::string> {
      std::string p = prefix;
      if (a.rfind(p, 0) == 0) return a.substr(p.size());
      return std::nullopt;
    };
    if (auto v = value("--key=")) c.key = *v;
    else if (auto v = value("--protocol=")) c.protocol = *v;
    else if (auto v = value("--container_pid=")) c.containerPid = std::atoi(v->c_str());
    else if (auto v = value("--task=")) c.task = *v;
    else if (auto v = value("--follow=")) c.follow = *v;
    else if (a == "--port_forward") c.kind = Kind::kPortForward;
    else if (a == "--tty") c.tty = true;
    else if (a == "--stdin") c.withStdin = true;
    else if (a == "--no_stdout") c.withStdout = false;
    else if (a == "--no_stderr") c.withStderr = false;
    else if (a.rfind("--fd=", 0) == 0) continue;
    else return Error("unknown argument '" + a + "'");
  }
  if (i < args.size()) c.argv.assign(args.begin() + static_cast<long>(i) + 1, args.end());
  if (!c.follow.empty()) c.kind = Kind::kAttach;
  if (c.key.empty() || (c.argv.empty() && c.kind == Kind::kExec)) {
    return Error("needs --key, and a command after -- or --follow");
  }
  return c;
}

Result<RemoteCommand> remoteCommandFrom(const HttpRequest& request, RemoteCommand::Kind kind) {
  RemoteCommand c;
  c.kind = kind;
  auto header = [&](const char* name) {
    auto it = request.headers.find(name);
    return it == request.headers.end() ? std::string() : it->second;
  };
  std::string upgrade = header("upgrade");
  for (char& ch : upgrade) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (upgrade != "websocket") {
    return Error("this endpoint speaks the WebSocket remote-command protocol (kubectl 1.30 or "
                 "newer); the request does not ask to upgrade to a WebSocket");
  }
  c.key = header("sec-websocket-key");
  if (c.key.empty() || header("sec-websocket-version") != "13") {
    return Error("a WebSocket upgrade needs Sec-WebSocket-Key and Sec-WebSocket-Version: 13");
  }
  std::vector<std::string> offered = splitList(header("sec-websocket-protocol"));
  std::vector<const char*> served = {kV5, kV4};
  if (kind == RemoteCommand::Kind::kPortForward) served = {kPortForwardTunnel};
  for (const char* wanted : served) {
    if (c.protocol.empty() &&
        std::find(offered.begin(), offered.end(), wanted) != offered.end()) {
      c.protocol = wanted;
    }
  }
  if (c.protocol.empty()) {
    std::string names;
    for (const char* name : served) names += (names.empty() ? "" : ", ") + std::string(name);
    return Error("none of the offered protocols is served here (" + names + " are)");
  }
  // The command's words each come as a `command` parameter, in order.
  size_t q = request.target.find('?');
  std::string query = q == std::string::npos ? "" : request.target.substr(q + 1);
  size_t at = 0;
  while (at <= query.size() && !query.empty()) {
    size_t amp = query.find('&', at);
    if (amp == std::string::npos) amp = query.size();
    std::string pair = query.substr(at, amp - at);
    size_t eq = pair.find('=');
    if (urlDecode(pair.substr(0, eq)) == "command" && eq != std::string::npos) {
      c.argv.push_back(urlDecode(pair.substr(eq + 1)));
    }
    at = amp + 1;
  }
  c.tty = truthy(request.param("tty"));
  c.withStdin = truthy(request.param("stdin"));
  c.withStdout = request.param("stdout", "true") != "false";
  c.withStderr = !c.tty && request.param("stderr", "true") != "false";
  if (c.argv.empty() && kind == RemoteCommand::Kind::kExec) {
    return Error("you must specify at least one command for the container");
  }
  return c;
}

std::string statusAnswer(int code, const std::string& reason, const std::string& message) {
  std::string body = json{{"kind", "Status"},
                          {"apiVersion", "v1"},
                          {"metadata", json::object()},
                          {"status", "Failure"},
                          {"message", message},
                          {"reason", reason},
                          {"code", code}}
                         .dump();
  std::string text = code == 400   ? "Bad Request"
                     : code == 403 ? "Forbidden"
                     : code == 404 ? "Not Found"
                                   : "Error";
  return "HTTP/1.1 " + std::to_string(code) + " " + text +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

int runRemoteCommand(const std::vector<std::string>& args) {
  int fd = -1;
  for (const std::string& a : args) {
    if (a.rfind("--fd=", 0) == 0) fd = std::atoi(a.c_str() + 5);
  }
  if (fd < 0) {
    std::fprintf(stderr, "agora executor remote-command: needs --fd=N (the agent starts it)\n");
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  auto command = RemoteCommand::fromArgs(args);
  if (!command) {
    (void)writeAll(fd, statusAnswer(400, "BadRequest", command.error()));
    return 2;
  }
  if (command->kind == RemoteCommand::Kind::kPortForward) {
    return runPortForward(fd, *command);
  }
  Session session(fd, std::move(*command));
  return session.run();
}

}  // namespace agora::agent
