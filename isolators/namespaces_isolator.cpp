#include "isolators/namespaces_isolator.hpp"

namespace agora::isolators {

Status NamespacesIsolator::prepare(const ContainerSpec& spec, Launch* launch) {
  const auto& ns = namespaces_;
  std::vector<std::string> unshare = {"/usr/bin/unshare", "--fork", "--kill-child"};
  if (ns.count("pid") > 0) {
    unshare.push_back("--pid");
    unshare.push_back("--mount-proc");
  }
  if (ns.count("mount") > 0 || ns.count("pid") > 0) {
    unshare.push_back("--mount");
    unshare.push_back("--propagation=private");
  }
  if (ns.count("net") > 0) unshare.push_back("--net");
  if (ns.count("uts") > 0) unshare.push_back("--uts");
  if (ns.count("ipc") > 0) unshare.push_back("--ipc");
  // What runs inside the new namespaces before the command.
  std::string setup;
  if (ns.count("mount") > 0) {
    // A private /tmp: the sandbox's tmp/ mounted over it. What the container needs from the
    // old /tmp (the agent's work directory with the sandbox and the executors' socket, the
    // directory of the program it runs, the image store) would vanish with it, so it is
    // mounted into the new /tmp at the same place first.
    std::string keep;
    for (const std::string& path : spec.keep) {
      keep += (keep.empty() ? "" : "\n") + path;
    }
    launch->env["AGORA_CONTAINER_TMP"] = spec.sandbox + "/tmp";
    launch->env["AGORA_CONTAINER_KEEP"] = keep;
    setup +=
        "t=\"$AGORA_CONTAINER_TMP\"; mkdir -p \"$t\" && chmod 1777 \"$t\" || exit 125; "
        "printf '%s\\n' \"$AGORA_CONTAINER_KEEP\" | while IFS= read -r p; do "
        "case \"$p/\" in /tmp/?*) [ -e \"$p\" ] || continue; mkdir -p \"$t/${p#/tmp/}\" && "
        "mount --bind \"$p\" \"$t/${p#/tmp/}\" || exit 125;; esac; done || exit 125; "
        "mount --rbind \"$t\" /tmp || exit 125; "
        "export TMPDIR=/tmp; unset AGORA_CONTAINER_TMP AGORA_CONTAINER_KEEP; ";
  }
  if (ns.count("net") > 0) {
    // Its own network stack: a loopback of its own and no other interface.
    setup += "ip link set lo up || exit 125; ";
  }
  if (ns.count("uts") > 0) {
    launch->env["AGORA_CONTAINER_HOSTNAME"] = spec.executorId;
    setup += "hostname \"$AGORA_CONTAINER_HOSTNAME\" || exit 125; unset AGORA_CONTAINER_HOSTNAME; ";
  }
  unshare.insert(unshare.end(), {"--", "/bin/sh", "-c", setup + "exec \"$@\"", "agora-ns"});
  launch->wrapper = std::move(unshare);
  return ok();
}

}  // namespace agora::isolators
