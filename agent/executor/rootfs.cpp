#include "agent/executor/rootfs.hpp"

#include <grp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "common/fs.hpp"
#include "isolators/confine.hpp"

namespace agora::agent {

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::cerr << "agora: cannot run the task in its image: " << what << "\n";
  ::_exit(127);
}

void check(int rc, const std::string& what) {
  if (rc != 0) {
    fail(what + ": " + std::strerror(errno));
  }
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, sep)) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

void makeDirs(const std::string& path) {
  if (Status s = makeDirectories(path); !s) fail(s.error());
}

void writeText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) fail("cannot write " + path);
  out << text;
}

// The uid and gid of a user named in the image: "name", "uid", "name:group" or "uid:gid", from
// its /etc/passwd and /etc/group (read after the pivot).
std::pair<uid_t, gid_t> lookupUser(const std::string& spec) {
  std::string user = spec.substr(0, spec.find(':'));
  std::string group = spec.find(':') == std::string::npos ? "" : spec.substr(spec.find(':') + 1);
  auto numeric = [](const std::string& s) {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
  };
  uid_t uid = 0;
  gid_t gid = 0;
  bool found = numeric(user);
  if (found) uid = static_cast<uid_t>(std::stoul(user));
  std::ifstream passwd("/etc/passwd");
  std::string line;
  while (std::getline(passwd, line)) {
    auto f = split(line + ":", ':');
    if (f.size() >= 4 && (f[0] == user || (numeric(user) && f[2] == user))) {
      uid = static_cast<uid_t>(std::stoul(f[2]));
      gid = static_cast<gid_t>(std::stoul(f[3]));
      found = true;
      break;
    }
  }
  if (!found) fail("no user '" + user + "' in the image's /etc/passwd");
  if (!group.empty()) {
    if (numeric(group)) {
      gid = static_cast<gid_t>(std::stoul(group));
    } else {
      std::ifstream groups("/etc/group");
      bool known = false;
      while (std::getline(groups, line)) {
        auto f = split(line + ":", ':');
        if (f.size() >= 3 && f[0] == group) {
          gid = static_cast<gid_t>(std::stoul(f[2]));
          known = true;
        }
      }
      if (!known) fail("no group '" + group + "' in the image's /etc/group");
    }
  }
  return {uid, gid};
}

void device(const std::string& dev, const char* name, unsigned major, unsigned minor) {
  std::string path = dev + "/" + name;
  check(::mknod(path.c_str(), S_IFCHR | 0666, makedev(major, minor)), "mknod " + path);
  check(::chmod(path.c_str(), 0666), "chmod " + path);
}

}  // namespace

int runInRootfs(const std::vector<std::string>& args) {
  std::vector<std::string> layers;
  std::string sandbox;
  std::string shared;
  std::string workdir = "/";
  std::string user;
  std::vector<std::pair<std::string, std::string>> mounts;  // host source, container target
  std::vector<std::string> files;  // the framework's files among them: the task user's
  std::vector<std::string> argv;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const char* flag) { return a.substr(std::strlen(flag)); };
    if (a == "--") {
      argv.assign(args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    } else if (a.rfind("--layers=", 0) == 0) {
      layers = split(value("--layers="), ':');
    } else if (a.rfind("--sandbox=", 0) == 0) {
      sandbox = value("--sandbox=");
    } else if (a.rfind("--shared=", 0) == 0) {
      shared = value("--shared=");
    } else if (a.rfind("--workdir=", 0) == 0) {
      workdir = value("--workdir=");
    } else if (a.rfind("--user=", 0) == 0) {
      user = value("--user=");
    } else if (a.rfind("--mount=", 0) == 0 || a.rfind("--file=", 0) == 0) {
      bool file = a.rfind("--file=", 0) == 0;
      std::string spec = value(file ? "--file=" : "--mount=");
      size_t colon = spec.find(':');
      if (colon == std::string::npos || spec.find("..") != std::string::npos) {
        fail("bad mount " + spec);
      }
      mounts.emplace_back(spec.substr(0, colon), spec.substr(colon + 1));
      if (file) {
        files.push_back(spec.substr(colon + 1));
      }
    } else {
      fail("unknown argument " + a);
    }
  }
  if (layers.empty() || sandbox.empty() || argv.empty()) {
    fail("usage: agora executor enter-rootfs --layers=L1:L2 --sandbox=DIR -- argv...");
  }
  // Everything from here is this task's alone.
  check(::unshare(CLONE_NEWNS), "unshare the mount namespace");
  check(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), "make mounts private");

  std::string base = sandbox + "/.rootfs";
  std::string root = base + "/merged";
  makeDirs(base + "/upper");
  makeDirs(base + "/work");
  makeDirs(root);
  // overlayfs lists its lower layers topmost first.
  std::string lower;
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
    lower += (lower.empty() ? "" : ":") + *it;
  }
  std::string options = "lowerdir=" + lower + ",upperdir=" + base + "/upper,workdir=" + base +
                        "/work";
  check(::mount("overlay", root.c_str(), "overlay", 0, options.c_str()),
        "mount the image's layers (overlayfs)");

  makeDirs(root + "/proc");
  check(::mount("proc", (root + "/proc").c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                nullptr),
        "mount /proc");
  std::string dev = root + "/dev";
  makeDirs(dev);
  check(::mount("tmpfs", dev.c_str(), "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"),
        "mount /dev");
  device(dev, "null", 1, 3);
  device(dev, "zero", 1, 5);
  device(dev, "full", 1, 7);
  device(dev, "random", 1, 8);
  device(dev, "urandom", 1, 9);
  device(dev, "tty", 5, 0);
  makeDirs(dev + "/pts");
  makeDirs(dev + "/shm");
  (void)::mount("devpts", (dev + "/pts").c_str(), "devpts", MS_NOSUID | MS_NOEXEC,
                "newinstance,ptmxmode=0666,mode=0620");
  (void)::symlink("pts/ptmx", (dev + "/ptmx").c_str());
  (void)::mount("shm", (dev + "/shm").c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  for (auto [name, target] : {std::pair{"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"},
                              {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"}}) {
    (void)::symlink(target, (dev + "/" + name).c_str());
  }

  // Who it is on the network.
  char host[256] = {0};
  ::gethostname(host, sizeof(host) - 1);
  makeDirs(root + "/etc");
  writeText(root + "/etc/hostname", std::string(host) + "\n");
  writeText(root + "/etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n127.0.1.1\t" +
                                     std::string(host) + "\n");
  writeText(root + "/etc/resolv.conf", readFile("/etc/resolv.conf").value_or(""));

  // Its sandbox (and a group's scratch directory) where it can find them.
  makeDirs(root + kRootfsSandbox);
  check(::mount(sandbox.c_str(), (root + kRootfsSandbox).c_str(), nullptr, MS_BIND | MS_REC,
                nullptr),
        "mount the sandbox");
  if (!shared.empty()) {
    makeDirs(root + kRootfsShared);
    check(::mount(shared.c_str(), (root + kRootfsShared).c_str(), nullptr, MS_BIND | MS_REC,
                  nullptr),
          "mount the shared directory");
  }

  // Its volumes, where they ask to be (after the sandbox, which some are inside).
  for (const auto& [source, target] : mounts) {
    std::string at = root + (target.front() == '/' ? "" : "/") + target;
    struct stat st;
    if (::stat(source.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
      // A file or a device: mounted over a file of its own.
      makeDirs(at.substr(0, at.rfind('/')));
      writeText(at, "");
    } else {
      makeDirs(at);
    }
    check(::mount(source.c_str(), at.c_str(), nullptr, MS_BIND | MS_REC, nullptr),
          "mount the volume " + source + " at " + target);
  }

  // Into it.
  makeDirs(root + "/.agora-old-root");
  check(::syscall(SYS_pivot_root, root.c_str(), (root + "/.agora-old-root").c_str()),
        "pivot_root");
  check(::chdir("/"), "chdir /");
  check(::umount2("/.agora-old-root", MNT_DETACH), "unmount the old root");
  ::rmdir("/.agora-old-root");
  makeDirs(workdir);
  check(::chdir(workdir.c_str()), "chdir " + workdir);

  // Confined (isolators/confine.hpp) while still root, so that what it may not keep goes from
  // its bounding set too; then its user.
  if (Status confined = isolators::confineProcess(); !confined) {
    fail(confined.error());
  }
  if (!user.empty()) {
    auto [uid, gid] = lookupUser(user);
    for (const std::string& file : files) {
      check(::chown(file.c_str(), uid, gid), "give " + file + " to the task's user");
    }
    check(::setgroups(0, nullptr), "setgroups");
    check(::setgid(gid), "setgid");
    check(::setuid(uid), "setuid");
  }
  std::vector<char*> cargv;
  for (std::string& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  ::execvp(cargv[0], cargv.data());
  fail("cannot run " + argv[0] + " in the image: " + std::strerror(errno));
}

int runWithMounts(const std::vector<std::string>& args) {
  std::vector<std::pair<std::string, std::string>> mounts;
  std::vector<std::string> argv;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      argv.assign(args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    // --file= (the framework's files) and --mount= are bound alike here: the executor already
    // gave the files to the task's user.
    const char* flag = a.rfind("--file=", 0) == 0 ? "--file=" : "--mount=";
    if (a.rfind(flag, 0) != 0) fail("unknown argument " + a);
    std::string spec = a.substr(std::strlen(flag));
    size_t colon = spec.find(':');
    if (colon == std::string::npos || spec.find("..") != std::string::npos) {
      fail("bad mount " + spec);
    }
    mounts.emplace_back(spec.substr(0, colon), spec.substr(colon + 1));
  }
  if (argv.empty()) fail("usage: agora executor enter-mounts --file=SOURCE:TARGET -- argv...");
  check(::unshare(CLONE_NEWNS), "unshare the mount namespace");
  check(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), "make mounts private");
  for (const auto& [source, target] : mounts) {
    struct stat st;
    if (::stat(target.c_str(), &st) != 0) {
      makeDirs(target.substr(0, target.rfind('/')));
      writeText(target, "");
    }
    check(::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr),
          "mount " + source + " over " + target);
  }
  // Confined while still root, as enter-rootfs does (argv is setpriv, which keeps its
  // setuid and setgid).
  if (Status confined = isolators::confineProcess(); !confined) {
    fail(confined.error());
  }
  std::vector<char*> raw;
  for (auto& a : argv) raw.push_back(a.data());
  raw.push_back(nullptr);
  ::execvp(raw[0], raw.data());
  fail("cannot run " + argv[0] + ": " + std::strerror(errno));
}

}  // namespace agora::agent
