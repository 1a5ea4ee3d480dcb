#include "agent/http.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "agent/remote_command.hpp"
#include "common/fs.hpp"
#include "common/process.hpp"

namespace agora::agent {

namespace {

constexpr int64_t kMaxRead = 4 * 1024 * 1024;

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Resolves `path` and checks that it is inside `root`; an HTTP status and message otherwise.
Result<std::string> sandboxPath(const std::string& root, const std::string& path, int* status) {
  if (path.empty()) {
    *status = 400;
    return Error("missing 'path'");
  }
  auto real = realPath(path);
  if (!real) {
    *status = 404;
    return Error("no such file: " + path);
  }
  if (real->compare(0, root.size(), root) != 0 ||
      (real->size() > root.size() && (*real)[root.size()] != '/')) {
    *status = 403;
    return Error("path is outside the agent's work directory");
  }
  return real;
}

Result<int64_t> parseInt(const std::string& s, int64_t fallback) {
  if (s.empty()) {
    return fallback;
  }
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (*end != '\0') {
    return Error("'" + s + "' is not an integer");
  }
  return static_cast<int64_t>(v);
}

// Answers a connection taken over for a remote command with an error, and closes it.
void refuseConnection(int fd, int code, const std::string& reason, const std::string& message) {
  std::string answer = statusAnswer(code, reason, message);
  std::string_view left(answer);
  while (!left.empty()) {
    ssize_t n = ::write(fd, left.data(), left.size());
    if (n <= 0) break;
    left.remove_prefix(static_cast<size_t>(n));
  }
  ::close(fd);
}

}  // namespace

void addAgentRoutes(HttpServer& server, Loop& loop, Agent& agent, const std::string& workDir,
                    bool allowHostExec) {
  std::string root = realPath(workDir).ok() ? *realPath(workDir) : workDir;

  server.route("/health", [](const HttpRequest&, HttpResponder respond) {
    respond(HttpResponse::text("OK\n"));
  });
  HttpHandler state = [&loop, &agent](const HttpRequest&, HttpResponder respond) {
    loop.post([&agent, respond = std::move(respond)] {
      respond(HttpResponse::jsonBody(dump(agent.state())));
    });
  };
  server.route("/state", state);
  server.route("/agent/state", state);
  server.route("/containers", [&loop, &agent](const HttpRequest&, HttpResponder respond) {
    loop.post([&agent, respond = std::move(respond)] {
      respond(HttpResponse::jsonBody(dump(agent.containers())));
    });
  });
  // kubectl exec (a task's container) and agora ssh (the host): the connection is handed to a
  // remote-command process of its own (remote_command.hpp).
  // An attach follows the task's output instead of running a command; a port-forward
  // connects to the task's ports.
  using Kind = RemoteCommand::Kind;
  auto remote = [&loop, &agent](bool inContainer, Kind kind = Kind::kExec) -> HttpTakeover {
    return [&loop, &agent, inContainer, kind](const HttpRequest& request, int fd, std::string) {
      bool attach = kind == Kind::kAttach;
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      auto command = remoteCommandFrom(request, kind);
      std::string task = request.param("task");
      if (command && inContainer && task.empty()) {
        command = Error("missing 'task': the task whose container to run the command in");
      }
      if (!command) {
        refuseConnection(fd, 400, "BadRequest", command.error());
        return;
      }
      loop.post([&agent, fd, command = std::move(*command), task, inContainer,
                 attach]() mutable {
        if (inContainer) {
          auto container = agent.taskContainer(task);
          if (!container) {
            refuseConnection(fd, 404, "NotFound", container.error());
            return;
          }
          command.containerPid = container->pid;
          command.task = task;
          if (attach) command.follow = container->sandbox + "/stdout";
        }
        SpawnOptions spawn;
        spawn.argv = {selfExecutable(), "executor", "remote-command", "--fd=3"};
        for (std::string& arg : command.toArgs()) spawn.argv.push_back(std::move(arg));
        spawn.env = currentEnvironment();
        spawn.passFds = {{fd, 3}};
        spawn.newProcessGroup = true;
        auto pid = spawnProcess(spawn);
        if (!pid) {
          refuseConnection(fd, 500, "InternalError", pid.error());
          return;
        }
        ::close(fd);
      });
    };
  };
  server.takeOver("/containers/exec", remote(true));
  if (allowHostExec) {
    server.takeOver("/host/exec", remote(false));
  } else {
    server.takeOver("/host/exec", [](const HttpRequest&, int fd, std::string) {
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      refuseConnection(fd, 403, "Forbidden",
                       "this agent runs no commands on its host (it was started without "
                       "--allow_host_exec)");
    });
  }
  server.takeOver("/containers/attach", remote(true, Kind::kAttach));
  server.takeOver("/containers/portforward", remote(true, Kind::kPortForward));
  server.route("/metrics", [&server, &loop, &agent](const HttpRequest&, HttpResponder respond) {
    loop.post([&server, &agent, respond = std::move(respond)] {
      HttpResponse r =
          HttpResponse::text(agent.metricsText() + server.metricsText("agora_agent"));
      r.contentType = "text/plain; version=0.0.4; charset=utf-8";
      respond(std::move(r));
    });
  });

  // File access needs no agent state: it runs on the HTTP thread.
  server.route("/files/read", [root](const HttpRequest& request, HttpResponder respond) {
    int status = 200;
    auto path = sandboxPath(root, request.param("path"), &status);
    if (!path) {
      respond(HttpResponse::error(status, path.error()));
      return;
    }
    auto offset = parseInt(request.param("offset"), 0);
    auto length = parseInt(request.param("length"), kMaxRead);
    if (!offset || !length || *offset < -1 || *length < 0) {
      respond(HttpResponse::error(400, "offset and length must be integers (offset >= -1, "
                                       "length >= 0)"));
      return;
    }
    struct stat st;
    if (::stat(path->c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      respond(HttpResponse::error(400, "not a regular file: " + request.param("path")));
      return;
    }
    int64_t size = st.st_size;
    if (*offset == -1) {
      respond(HttpResponse::jsonBody(dump({{"data", ""}, {"offset", size}})));
      return;
    }
    int64_t begin = std::min<int64_t>(*offset, size);
    int64_t count = std::min<int64_t>({*length, size - begin, kMaxRead});
    std::string data(static_cast<size_t>(count), '\0');
    std::ifstream in(*path, std::ios::binary);
    in.seekg(begin);
    in.read(data.data(), count);
    data.resize(static_cast<size_t>(in.gcount()));
    respond(HttpResponse::jsonBody(dump({{"data", data}, {"offset", begin}})));
  });

  server.route("/files/browse", [root](const HttpRequest& request, HttpResponder respond) {
    int status = 200;
    auto path = sandboxPath(root, request.param("path"), &status);
    if (!path) {
      respond(HttpResponse::error(status, path.error()));
      return;
    }
    std::error_code ec;
    nlohmann::json entries = nlohmann::json::array();
    for (const auto& entry : std::filesystem::directory_iterator(*path, ec)) {
      struct stat st;
      if (::lstat(entry.path().c_str(), &st) != 0) {
        continue;
      }
      entries.push_back({{"path", entry.path().string()},
                         {"size", static_cast<int64_t>(st.st_size)},
                         {"mode", static_cast<int>(st.st_mode)},
                         {"mtime", static_cast<int64_t>(st.st_mtime)},
                         {"directory", S_ISDIR(st.st_mode)}});
    }
    if (ec) {
      respond(HttpResponse::error(400, "cannot list " + request.param("path") + ": " +
                                           ec.message()));
      return;
    }
    respond(HttpResponse::jsonBody(dump(entries)));
  });
}

}  // namespace agora::agent
