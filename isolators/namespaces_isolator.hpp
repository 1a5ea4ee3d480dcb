#pragma once

// namespaces/pid, namespaces/mount, namespaces/uts, namespaces/ipc, namespaces/net: the
// container's first process starts in new Linux namespaces, through util-linux's `unshare`:
//   pid    its own process tree, with its own /proc
//   mount  mounts made inside stay inside; a private /tmp (the sandbox's tmp/)
//   uts    its hostname is its executor id (for command tasks, the task id)
//   ipc    its own System V IPC and POSIX message queues
//   net    its own network stack, with only a loopback
// The namespaces go with the container's last process: nothing to clean up or recover.

#include <set>

#include "isolators/isolator.hpp"

namespace agora::isolators {

class NamespacesIsolator final : public Isolator {
 public:
  // `namespaces`: "pid", "mount", "uts", "ipc", "net".
  explicit NamespacesIsolator(std::set<std::string> namespaces)
      : namespaces_(std::move(namespaces)) {}

  std::string name() const override { return "namespaces"; }
  Status prepare(const ContainerSpec& spec, Launch* launch) override;

 private:
  std::set<std::string> namespaces_;
};

}  // namespace agora::isolators
