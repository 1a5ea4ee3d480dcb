#pragma once

// Running a task inside an image's root filesystem: `agora executor enter-rootfs`, the helper
// the built-in executors start such a task through. In a mount namespace of its own (so that
// everything it mounts goes with the task's last process, and the host never sees it), it
//   - mounts the image's layers read-only under an overlayfs whose upper layer is in the task's
//     sandbox (.rootfs/upper), so what the task writes stays with its sandbox;
//   - gives it a fresh /proc, a /dev with only the standard devices (and /dev/pts, /dev/shm),
//     /etc/hosts, /etc/hostname and /etc/resolv.conf;
//   - mounts the sandbox at /mnt/agora/sandbox (and a group's scratch directory at
//     /mnt/agora/shared), and the task's persistent volumes where they ask to be;
//   - pivots into it, changes to the working directory, becomes the user, and execs the task.

#include <string>
#include <vector>

namespace agora::agent {

// Inside the rootfs: where the sandbox and a group's scratch directory are.
inline constexpr const char* kRootfsSandbox = "/mnt/agora/sandbox";
inline constexpr const char* kRootfsShared = "/mnt/agora/shared";

// args: --layers=L1:L2 (lowest first) --sandbox=DIR [--shared=DIR] [--workdir=/] [--user=U]
// [--mount=SOURCE:TARGET ...] [--file=SOURCE:TARGET ...] -- argv... (a --file= is the
// framework's, and becomes the user's). It runs the task confined (isolators/confine.hpp).
int runInRootfs(const std::vector<std::string>& args);

// A task on the host's filesystem with files of its framework's over some of the host's (an
// /etc/resolv.conf): in a mount namespace of its own, each file bind-mounted over its target,
// then argv, confined (isolators/confine.hpp). args: --file=SOURCE:TARGET ... -- argv...
int runWithMounts(const std::vector<std::string>& args);

}  // namespace agora::agent
