#pragma once

// A command run on an agent for someone at a terminal far away: `kubectl exec` into a
// container, `agora ssh` onto the node. The agent hands the client's connection (an HTTP
// request asking to upgrade to a WebSocket) to `agora executor remote-command`, a process of
// its own, which
//   - finds the container's task process (below the container's first process, the one whose
//     environment names the task) and refuses with an HTTP error when it cannot;
//   - answers 101 and speaks Kubernetes' remote-command protocol (v4 or v5.channel.k8s.io):
//     binary messages whose first byte is the channel: 0 stdin, 1 stdout, 2 stderr, 3 the
//     outcome (a metav1.Status as JSON), 4 terminal size ({"Width":W,"Height":H}), and in v5
//     255 to close a channel (stdin's end);
//   - joins the task's cgroups, and runs the command through nsenter in the task's mount, UTS,
//     IPC, network and PID namespaces, in its root and working directory, as its user, with
//     its environment; on a pseudo-terminal when asked (resized as the client's is), on pipes
//     otherwise;
//   - when the command exits, sends what is left of its output, then its exit code on channel
//     3 ("NonZeroExitCode" with the code as the cause, as the kubelet does), and closes; when
//     the client goes first, kills the command's session.
// On the host (no container) the command runs as root in the agent's own namespaces.

#include <string>
#include <vector>

#include "common/http.hpp"
#include "common/result.hpp"

namespace agora::agent {

// What to run and how, from the request.
struct RemoteCommand {
  enum class Kind { kExec, kAttach, kPortForward };
  Kind kind = Kind::kExec;
  std::string key;        // Sec-WebSocket-Key
  std::string protocol;   // the channel protocol chosen: v5.channel.k8s.io or v4
  pid_t containerPid = 0; // the container's first process; 0: the host
  std::string task;       // the task whose process to join (in a container)
  bool tty = false;
  bool withStdin = false;
  bool withStdout = true;
  bool withStderr = true;
  std::vector<std::string> argv;
  // Attach: instead of running a command, send what the task writes to this file (its
  // stdout, where a pod's containers write both streams) until the task ends.
  std::string follow;

  // As arguments for `agora executor remote-command`, and back.
  std::vector<std::string> toArgs() const;
  static Result<RemoteCommand> fromArgs(const std::vector<std::string>& args);
};

// Checks an upgrade request (the query: command (repeated; exec only), tty, stdin, stdout,
// stderr; the WebSocket headers and the subprotocol `kind` speaks) and fills all but
// containerPid, task and follow. The error is for a 400.
Result<RemoteCommand> remoteCommandFrom(const HttpRequest& request,
                                        RemoteCommand::Kind kind = RemoteCommand::Kind::kExec);

// The topmost process below `root` (or `root` itself) whose environment names `task` (0: none).
pid_t findTaskProcess(pid_t root, const std::string& task);

// `kubectl port-forward`'s side on the agent (port_forward.cpp): SPDY/3.1 tunnelled through
// the WebSocket on `socket`, each forwarded connection a pair of streams (error and data) to
// the port on localhost in the task's network namespace. Answers the upgrade itself.
int runPortForward(int socket, const RemoteCommand& command);

// An HTTP error answer with a Kubernetes Status body, as kubectl shows it.
std::string statusAnswer(int code, const std::string& reason, const std::string& message);

// `agora executor remote-command --fd=N ARGS`: serves the connection on descriptor N.
int runRemoteCommand(const std::vector<std::string>& args);

}  // namespace agora::agent
