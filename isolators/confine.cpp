#include "isolators/confine.hpp"

#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iostream>

namespace agora::isolators {

namespace {

// What a container keeps when it runs as root (the usual container runtime default).
constexpr int kDefaultCapabilities[] = {
    CAP_CHOWN,     CAP_DAC_OVERRIDE, CAP_FOWNER,           CAP_FSETID,  CAP_KILL,
    CAP_SETGID,    CAP_SETUID,       CAP_SETPCAP,          CAP_SETFCAP, CAP_NET_BIND_SERVICE,
    CAP_NET_RAW,   CAP_SYS_CHROOT,   CAP_MKNOD,            CAP_AUDIT_WRITE,
};

bool isDefault(int cap) {
  for (int c : kDefaultCapabilities) {
    if (c == cap) {
      return true;
    }
  }
  return false;
}

int lastCapability() {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int last = CAP_LAST_CAP;
  in >> last;
  return last;
}

Status dropCapabilities() {
  const int last = lastCapability();
  for (int cap = 0; cap <= last; ++cap) {
    if (!isDefault(cap) && ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      return Error("cannot drop capability " + std::to_string(cap) + " from the bounding set: " +
                   std::strerror(errno));
    }
  }
  (void)::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &header, data) != 0) {
    return Error(std::string("cannot read the capabilities: ") + std::strerror(errno));
  }
  uint32_t keep[_LINUX_CAPABILITY_U32S_3] = {};
  for (int cap : kDefaultCapabilities) {
    keep[cap / 32] |= 1u << (cap % 32);
  }
  for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; ++i) {
    data[i].effective &= keep[i];
    data[i].permitted &= keep[i];
    data[i].inheritable &= keep[i];
  }
  if (::syscall(SYS_capset, &header, data) != 0) {
    return Error(std::string("cannot set the capabilities: ") + std::strerror(errno));
  }
  return ok();
}

Status installFilter() {
  scmp_filter_ctx filter = ::seccomp_init(SCMP_ACT_ALLOW);
  if (filter == nullptr) {
    return Error("cannot create a seccomp filter");
  }
  auto release = [&filter] { ::seccomp_release(filter); };
  for (const std::string& name : deniedSyscalls()) {
    int nr = ::seccomp_syscall_resolve_name(name.c_str());
    if (nr < 0) {
      continue;  // not a system call on this architecture
    }
    if (int rc = ::seccomp_rule_add(filter, SCMP_ACT_ERRNO(EPERM), nr, 0); rc != 0) {
      release();
      return Error("cannot deny " + name + ": " + std::strerror(-rc));
    }
  }
  // New user namespaces would give the task a root of its own, and mounts with it.
  int rc = ::seccomp_rule_add(filter, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
  if (rc == 0) {
    rc = ::seccomp_rule_add(filter, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                            SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
  }
  if (rc == 0) {
    // clone3 passes its flags in memory a filter cannot read: libc falls back to clone.
    rc = ::seccomp_rule_add(filter, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  }
  if (rc != 0) {
    release();
    return Error(std::string("cannot filter namespace creation: ") + std::strerror(-rc));
  }
  rc = ::seccomp_load(filter);
  release();
  if (rc != 0) {
    return Error(std::string("cannot load the seccomp filter: ") + std::strerror(-rc));
  }
  return ok();
}

}  // namespace

const std::vector<std::string>& deniedSyscalls() {
  static const std::vector<std::string> denied = {
      // kernel modules, rebooting, kexec
      "init_module", "finit_module", "delete_module", "create_module", "query_module",
      "get_kernel_syms", "reboot", "kexec_load", "kexec_file_load",
      // mounts and roots
      "mount", "umount", "umount2", "pivot_root", "mount_setattr", "move_mount", "open_tree",
      "fsopen", "fsconfig", "fsmount", "fspick",
      // the machine's swap, clock, accounting and quotas
      "swapon", "swapoff", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
      "stime", "acct", "quotactl", "quotactl_fd",
      // kernel facilities a container has no use for
      "add_key", "request_key", "keyctl", "bpf", "perf_event_open", "lookup_dcookie",
      "open_by_handle_at", "name_to_handle_at", "userfaultfd", "syslog", "iopl", "ioperm",
      "vhangup", "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl", "setns",
  };
  return denied;
}

Status confineProcess() {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return Error(std::string("cannot set no_new_privs: ") + std::strerror(errno));
  }
  if (::geteuid() == 0) {
    if (Status dropped = dropCapabilities(); !dropped) {
      return dropped;
    }
  }
  return installFilter();
}

int runConfined(const std::vector<std::string>& args) {
  std::vector<std::string> argv;
  if (!args.empty() && args[0] == "--") {
    argv.assign(args.begin() + 1, args.end());
  }
  if (argv.empty()) {
    std::cerr << "usage: agora executor confine -- argv...\n";
    return 2;
  }
  if (Status confined = confineProcess(); !confined) {
    std::cerr << "agora: cannot confine the task: " << confined.error() << "\n";
    return 127;
  }
  std::vector<char*> raw;
  for (std::string& a : argv) {
    raw.push_back(a.data());
  }
  raw.push_back(nullptr);
  ::execvp(raw[0], raw.data());
  std::cerr << "agora: cannot run " << argv[0] << ": " << std::strerror(errno) << "\n";
  return 127;
}

}  // namespace agora::isolators
