#include "agent/executor/health_checker.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include <glog/logging.h>

#include "common/fs.hpp"
#include "common/health_check.hpp"
#include "common/http.hpp"
#include "common/process.hpp"

namespace agora::agent {

namespace {

Duration orDefault(double seconds, Duration fallback) {
  return seconds > 0 ? fromSeconds(seconds) : fallback;
}

}  // namespace

HealthChecker::Timing HealthChecker::timingOf(const HealthCheck& check) {
  Timing t;
  t.delay = fromSeconds(std::max(0.0, check.delay_seconds()));
  t.interval = orDefault(check.interval_seconds(), seconds(10));
  t.timeout = orDefault(check.timeout_seconds(), seconds(20));
  t.grace = fromSeconds(std::max(0.0, check.grace_period_seconds()));
  t.consecutiveFailures = check.consecutive_failures() > 0 ? check.consecutive_failures() : 3;
  return t;
}

Status HealthChecker::validate(const HealthCheck& check) { return validateHealthCheck(check); }

HealthChecker::HealthChecker(ExecutorDriver* driver, HealthCheck check, std::string self,
                             std::string output, RunHelper run, Changed changed, Failed failed)
    : driver_(driver),
      check_(std::move(check)),
      timing_(timingOf(check_)),
      self_(std::move(self)),
      output_(std::move(output)),
      run_(std::move(run)),
      changed_(std::move(changed)),
      failed_(std::move(failed)) {}

HealthChecker::~HealthChecker() {
  *alive_ = false;
  driver_->cancel(timer_);
}

void HealthChecker::start() {
  started_ = std::chrono::steady_clock::now();
  schedule(timing_.delay);
}

void HealthChecker::stop() {
  stopped_ = true;
  driver_->cancel(timer_);
  timer_ = 0;
}

void HealthChecker::schedule(Duration after) {
  if (stopped_) {
    return;
  }
  timer_ = driver_->after(after, [this] {
    timer_ = 0;
    check();
  });
}

void HealthChecker::check() {
  std::vector<std::string> argv;
  bool asTaskUser = false;
  switch (check_.type()) {
    case HealthCheck::COMMAND: {
      const CommandInfo& command = check_.command();
      if (!command.has_shell() || command.shell()) {
        argv = {"/bin/sh", "-c", command.value()};
      } else {
        argv.assign(command.arguments().begin(), command.arguments().end());
        if (argv.empty()) {
          argv.push_back(command.value());
        }
        argv[0] = command.value();
      }
      asTaskUser = true;
      break;
    }
    case HealthCheck::HTTP:
      argv = {self_,
              "executor",
              "probe",
              "http",
              check_.http().host().empty() ? "127.0.0.1" : check_.http().host(),
              std::to_string(check_.http().port()),
              check_.http().path().empty() ? "/" : check_.http().path()};
      break;
    case HealthCheck::TCP:
      argv = {self_, "executor", "probe", "tcp",
              check_.tcp().host().empty() ? "127.0.0.1" : check_.tcp().host(),
              std::to_string(check_.tcp().port())};
      break;
    default:
      result(false, "the health check has no type");
      return;
  }
  std::weak_ptr<bool> alive = alive_;
  Status started = run_(argv, asTaskUser, output_, timing_.timeout,
                        [this, alive](int waitStatus, bool timedOut) {
                          if (auto a = alive.lock(); a && *a) {
                            finished(waitStatus, timedOut);
                          }
                        });
  if (!started && started.error().rfind(kNotYet, 0) == 0) {
    schedule(timing_.interval);
  } else if (!started) {
    result(false, "cannot run the health check: " + started.error());
  }
}

std::string HealthChecker::lastOutput() const {
  std::string out = readFile(output_).value_or("");
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
    out.pop_back();
  }
  if (out.size() > 300) {
    out = "..." + out.substr(out.size() - 300);
  }
  return out;
}

void HealthChecker::finished(int waitStatus, bool timedOut) {
  if (stopped_) {
    return;
  }
  std::string output = lastOutput();
  if (timedOut) {
    result(false, "the health check timed out after " + formatDuration(timing_.timeout));
  } else if (WIFEXITED(waitStatus) && WEXITSTATUS(waitStatus) == 0) {
    result(true, output);
  } else if (check_.type() == HealthCheck::COMMAND) {
    result(false, "the health check command " + describeWaitStatus(waitStatus) +
                      (output.empty() ? "" : ": " + output));
  } else {
    result(false, output.empty() ? "the probe " + describeWaitStatus(waitStatus) : output);
  }
}

void HealthChecker::result(bool healthy, const std::string& message) {
  if (stopped_) {
    return;
  }
  bool inGrace = !everHealthy_ && std::chrono::steady_clock::now() - started_ < timing_.grace;
  if (healthy) {
    everHealthy_ = true;
    failures_ = 0;
  } else if (!inGrace) {
    ++failures_;
  }
  // Failures in the grace period are not news: the task may still be starting up.
  if (!(inGrace && !healthy) && reported_ != (healthy ? 1 : 0)) {
    reported_ = healthy ? 1 : 0;
    changed_(healthy, healthy ? "the task is healthy" : "the task is unhealthy: " + message);
  }
  if (!healthy && failures_ >= timing_.consecutiveFailures && !reportOnly_) {
    stopped_ = true;
    failed_("failed its health check " + std::to_string(failures_) + " times in a row (" + message +
            ")");
    return;
  }
  schedule(timing_.interval);
}

// ------------------------------------------------------------------------------------------

namespace {

// Connects to host:port within `timeout`; the socket, or why not.
Result<int> connectWithin(const std::string& host, int port, Duration timeout) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return Error("bad address " + host);
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return Error(std::string("socket: ") + std::strerror(errno));
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 &&
      errno != EINPROGRESS) {
    std::string why = std::strerror(errno);
    ::close(fd);
    return Error("cannot connect to " + host + ":" + std::to_string(port) + ": " + why);
  }
  pollfd p{fd, POLLOUT, 0};
  int ready = ::poll(&p, 1, static_cast<int>(timeout / milliseconds(1)));
  int error = 0;
  socklen_t length = sizeof(error);
  if (ready <= 0) {
    ::close(fd);
    return Error("no connection to " + host + ":" + std::to_string(port) + " within " +
                 formatDuration(timeout));
  }
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
  if (error != 0) {
    ::close(fd);
    return Error("cannot connect to " + host + ":" + std::to_string(port) + ": " +
                 std::strerror(error));
  }
  return fd;
}

}  // namespace

int runHealthProbe(const std::vector<std::string>& args) {
  auto usage = [] {
    std::cout << "usage: agora executor probe http HOST PORT PATH | tcp HOST PORT\n";
    return 2;
  };
  if (args.size() < 3) {
    return usage();
  }
  const std::string& kind = args[0];
  const std::string& host = args[1];
  int port = std::atoi(args[2].c_str());
  if (port <= 0 || port > 65535) {
    return usage();
  }
  // The executor kills a probe at the check's timeout; this one is only a backstop.
  const Duration limit = minutes(10);
  if (kind == "tcp" && args.size() == 3) {
    auto fd = connectWithin(host, port, limit);
    if (!fd) {
      std::cout << fd.error() << "\n";
      return 1;
    }
    ::close(*fd);
    std::cout << "connected to " << host << ":" << port << "\n";
    return 0;
  }
  if (kind == "http" && args.size() == 4) {
    auto response = httpGet(host + ":" + std::to_string(port), args[3], limit);
    if (!response) {
      std::cout << "GET http://" << host << ":" << port << args[3] << ": " << response.error()
                << "\n";
      return 1;
    }
    bool healthy = response->status >= 200 && response->status < 400;
    std::cout << "GET http://" << host << ":" << port << args[3] << " answered " << response->status
              << "\n";
    return healthy ? 0 : 1;
  }
  return usage();
}

}  // namespace agora::agent
