// agora ssh [NODE] [-- COMMAND...]: a shell (or a command) on a node's host, through its agent.
// The agent runs it as it runs `kubectl exec` (agent/remote_command.hpp); this is the client
// side of that WebSocket protocol: stdin goes out on channel 0 (its end as a v5 close), the
// terminal's size on 4 whenever it changes, output comes back on 1 and 2, and the exit code on
// 3.

#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/daemon.hpp"
#include "cli/profile.hpp"
#include "common/flags.hpp"
#include "common/http.hpp"
#include "common/http_tokens.hpp"
#include "common/net.hpp"
#include "common/websocket.hpp"

namespace agora::cli {

namespace {

using nlohmann::json;

int winchPipe[2] = {-1, -1};

void onWinch(int) {
  char c = 'w';
  (void)::write(winchPipe[1], &c, 1);
}

// Sends the upgrade request and reads the answer's head; the bytes after it go to `early`.
Status upgrade(int fd, const std::string& address, const std::string& target,
               std::string* early) {
  std::string key = websocket::newKey();
  std::string request = "GET " + target + " HTTP/1.1\r\nHost: " + address +
                        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n"
                        "Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n" +
                        (defaultBearerToken().empty()
                             ? std::string()
                             : "Authorization: Bearer " + defaultBearerToken() + "\r\n") +
                        "\r\n";
  if (!writeAll(fd, request)) return Error("the master at " + address + " hung up");
  std::string answer;
  char buffer[4096];
  size_t end = std::string::npos;
  while ((end = answer.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n <= 0) return Error("the master at " + address + " hung up");
    answer.append(buffer, static_cast<size_t>(n));
    if (answer.size() > 64 * 1024) return Error("the agent's answer is not HTTP");
  }
  std::string head = answer.substr(0, end);
  *early = answer.substr(end + 4);
  if (head.rfind("HTTP/1.1 101", 0) == 0) {
    if (head.find(websocket::acceptKey(key)) == std::string::npos) {
      return Error("the agent's WebSocket handshake is wrong");
    }
    return ok();
  }
  // An error: its Status says why (read to the end; it closes).
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n <= 0) break;
    early->append(buffer, static_cast<size_t>(n));
  }
  json status = json::parse(*early, nullptr, false);
  std::string why = status.is_object() ? status.value("message", "") : "";
  return Error(why.empty() ? head.substr(0, head.find('\r')) : why);
}

// Relays between this terminal and the remote command until it ends; its exit code.
int session(int fd, std::string early, bool tty) {
  websocket::Decoder decoder(false);
  decoder.feed(early);
  auto send = [&](uint8_t channel, std::string_view data) {
    std::string payload(1, static_cast<char>(channel));
    payload.append(data);
    return writeAll(fd, websocket::encodeFrame(websocket::Opcode::kBinary, payload, true));
  };
  auto sendSize = [&] {
    winsize ws{};
    if (::ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
      send(4, json{{"Width", ws.ws_col}, {"Height", ws.ws_row}}.dump());
    }
  };
  termios saved{};
  bool raw = tty && ::tcgetattr(STDIN_FILENO, &saved) == 0;
  if (raw) {
    termios t = saved;
    ::cfmakeraw(&t);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &t);
    if (::pipe(winchPipe) == 0) ::signal(SIGWINCH, onWinch);
    sendSize();
  }
  int exitCode = -1;
  bool stdinOpen = true;
  bool open = true;
  while (open) {
    while (true) {
      auto next = decoder.next();
      if (!next) {
        std::cerr << "\r\nagora ssh: " << next.error() << "\r\n";
        open = false;
        break;
      }
      if (!next->has_value()) break;
      const websocket::Message& m = **next;
      if (m.opcode == websocket::Opcode::kClose) {
        open = false;
        break;
      }
      if (m.opcode == websocket::Opcode::kPing) {
        writeAll(fd, websocket::encodeFrame(websocket::Opcode::kPong, m.payload, true));
        continue;
      }
      if (m.payload.empty()) continue;
      std::string_view data(m.payload);
      data.remove_prefix(1);
      switch (static_cast<uint8_t>(m.payload[0])) {
        case 1: writeAll(STDOUT_FILENO, data); break;
        case 2: writeAll(STDERR_FILENO, data); break;
        case 3: {
          json status = json::parse(data, nullptr, false);
          exitCode = 0;
          if (status.is_object() && status.value("status", "") != "Success") {
            exitCode = 1;
            for (const json& cause : status.value("details", json::object())
                                         .value("causes", json::array())) {
              if (cause.value("reason", "") == "ExitCode") {
                exitCode = std::atoi(cause.value("message", "1").c_str());
              }
            }
          }
          break;
        }
        default: break;
      }
    }
    if (!open) break;
    std::vector<pollfd> fds = {{fd, POLLIN, 0}};
    if (stdinOpen) fds.push_back({STDIN_FILENO, POLLIN, 0});
    if (raw && winchPipe[0] >= 0) fds.push_back({winchPipe[0], POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) break;
    for (const pollfd& p : fds) {
      if (p.revents == 0) continue;
      char buffer[32 * 1024];
      ssize_t n = ::read(p.fd, buffer, sizeof(buffer));
      if (p.fd == fd) {
        if (n <= 0) open = false;
        else decoder.feed(std::string_view(buffer, static_cast<size_t>(n)));
      } else if (p.fd == STDIN_FILENO) {
        if (n > 0) {
          send(0, std::string_view(buffer, static_cast<size_t>(n)));
        } else {
          stdinOpen = false;
          send(255, std::string(1, '\0'));  // v5: stdin is done
        }
      } else if (n > 0) {
        sendSize();
      }
    }
  }
  if (raw) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
  writeAll(fd, websocket::encodeFrame(websocket::Opcode::kClose,
                                      websocket::closePayload(websocket::kNormalClosure), true));
  ::close(fd);
  if (exitCode < 0) {
    std::cerr << "agora ssh: the connection ended before the command did\n";
    return 255;
  }
  return exitCode;
}

}  // namespace

int sshCommand(int argc, const char* const* argv) {
  // What follows "--" is the command, not flags.
  std::vector<const char*> ours;
  std::vector<std::string> command;
  bool inCommand = false;
  for (int i = 0; i < argc; ++i) {
    if (inCommand) {
      command.push_back(argv[i]);
    } else if (i > 0 && std::strcmp(argv[i], "--") == 0) {
      inCommand = true;
    } else {
      ours.push_back(argv[i]);
    }
  }
  std::string master;
  std::string zk;
  std::string profile = "default";
  bool forceTty = false;
  Flags flags("agora ssh [NODE] [--profile=NAME] [--tty] [-- COMMAND...]",
              "A shell on a node's host (as root, through its agent), or a command there. NODE is "
              "an agent's hostname or id; without it, the cluster's only agent (or its first).");
  flags.add(&master, "master", "The master's HTTP address (default: the profile's master).");
  flags.add(&zk, "zk", "Follow the leader elected in ZooKeeper, e.g. zk://host:2181/agora.");
  flags.add(&profile, "profile", "The local cluster to ask when --master is not given.");
  flags.add(&forceTty, "tty", "A terminal for the command too (a shell always has one).");
  std::vector<std::string> positional;
  int rc = parseFlags(flags, static_cast<int>(ours.size()), ours.data(), &positional);
  if (rc >= 0) return rc;
  if (positional.size() > 1) {
    std::cerr << "agora ssh: one node at most (the command goes after --)\n";
    return 2;
  }
  json state;
  std::string address;  // the leading master's: it relays the command to the agent
  if (int failed = leaderState("ssh", master, zk, profile, &state, &address); failed >= 0) {
    return failed;
  }
  json agents = state.value("agents", json::array());
  std::string agentId;
  std::string names;
  for (const json& a : agents) {
    std::string hostname = a.value("hostname", "");
    names += (names.empty() ? "" : ", ") + hostname;
    if (positional.empty() || hostname == positional[0] || a.value("id", "") == positional[0]) {
      if (agentId.empty()) agentId = a.value("id", "");
    }
  }
  if (agentId.empty()) {
    std::cerr << "agora ssh: "
              << (agents.empty() ? std::string("the cluster has no agents")
                                 : "no node " + positional[0] + " (the nodes: " + names + ")")
              << "\n";
    return 1;
  }
  bool tty = command.empty() || forceTty;
  if (tty && ::isatty(STDIN_FILENO) == 0) {
    if (command.empty()) {
      std::cerr << "agora ssh: a shell needs a terminal; give a command after -- instead\n";
      return 2;
    }
    tty = false;
  }
  if (command.empty()) command = {"/bin/bash", "-l"};
  std::string target = "/agent/host/exec?agent_id=" + urlEncode(agentId) +
                       "&stdin=true&stdout=true&stderr=" +
                       (tty ? "false" : "true") + "&tty=" + (tty ? "true" : "false");
  for (const std::string& word : command) target += "&command=" + urlEncode(word);
  auto fd = connectHttp(address, Duration::zero());
  if (!fd) {
    std::cerr << "agora ssh: " << fd.error() << "\n";
    return 1;
  }
  std::string early;
  if (Status up = upgrade(*fd, address, target, &early); !up) {
    std::cerr << "agora ssh: " << up.error() << "\n";
    ::close(*fd);
    return 1;
  }
  return session(*fd, std::move(early), tty);
}

}  // namespace agora::cli
