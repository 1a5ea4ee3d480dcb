#pragma once

// What a task may ask of the kernel. Every task the built-in executors start is confined just
// before its command runs, as the last step after its mounts and its user:
//   - no new privileges (PR_SET_NO_NEW_PRIVS): setuid binaries and file capabilities give it
//     nothing more;
//   - a task running as root keeps only a default set of capabilities (those a container
//     runtime leaves a container: chown, dac_override, fowner, fsetid, kill, setgid, setuid,
//     setpcap, setfcap, net_bind_service, net_raw, sys_chroot, mknod, audit_write); the rest go
//     from its bounding set too, so nothing it runs gets them back;
//   - a seccomp filter (libseccomp) answers EPERM to what a container has no business doing:
//     loading or removing kernel modules, rebooting, kexec, mounting and pivoting roots,
//     swapping, setting the clock, kernel keyrings, bpf, perf events, open_by_handle_at,
//     entering other namespaces (setns), and creating user namespaces (unshare/clone with CLONE_NEWUSER; clone3,
//     whose flags a filter cannot read, answers ENOSYS so that libc falls back to clone).
//
// `agora executor confine -- argv...` applies it and runs argv (tasks on the host's
// filesystem); `enter-rootfs` applies it itself before it runs a task inside its image.

#include <string>
#include <vector>

#include "common/result.hpp"

namespace agora::isolators {

// Confines the calling process (see above). Fails, saying what, rather than run unconfined.
Status confineProcess();

// The syscalls the filter denies, by name (those this kernel and libseccomp know).
const std::vector<std::string>& deniedSyscalls();

// args: -- argv...
int runConfined(const std::vector<std::string>& args);

}  // namespace agora::isolators
