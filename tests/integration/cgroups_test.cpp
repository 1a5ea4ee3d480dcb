// Containers in this machine's real cgroup hierarchy (v1 here, v2 where the host has it): limits,
// stats, the memory limit's OOM kill, kill-all, and cleanup. Needs root.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "isolators/cgroups.hpp"
#include "common/fs.hpp"
#include "tests/support/process_cluster.hpp"
#include "tests/support/temp_dir.hpp"

namespace agora::cgroups {
namespace {

// A child that waits (on a pipe) until it is in the container, then runs `command`.
struct Child {
  pid_t pid = -1;
  int go = -1;  // write end: closing it lets the child run

  static Child start(const std::string& command) {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    Child child;
    child.pid = ::fork();
    if (child.pid == 0) {
      ::close(fds[1]);
      char byte;
      (void)::read(fds[0], &byte, 1);  // EOF once the parent has placed us
      ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[0]);
    child.go = fds[1];
    return child;
  }
  void run() {
    ::close(go);
    go = -1;
  }
  // The wait status, or -1 if it did not end within `timeout`.
  int waitFor(Duration timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        return status;
      }
      std::this_thread::yield();
    }
    return -1;
  }
  ~Child() {
    if (go >= 0) ::close(go);
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

class CgroupsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "needs root for cgroups";
    }
    auto detected = detectLayout();
    ASSERT_TRUE(detected) << detected.error();
    layout_ = *detected;
    root_ = "agora-test-" + std::to_string(::getpid());
  }
  void TearDown() override {
    for (auto& c : containers_) {
      EXPECT_TRUE(c->destroy(seconds(10)).ok());
    }
    // The test's own parent cgroup, in every hierarchy.
    Container parent(layout_, "", root_);
    EXPECT_TRUE(parent.destroy(seconds(10)).ok());
  }
  Container& container(const std::string& name) {
    containers_.push_back(std::make_unique<Container>(layout_, root_, name));
    return *containers_.back();
  }

  Layout layout_;
  std::string root_;
  std::vector<std::unique_ptr<Container>> containers_;
};

TEST_F(CgroupsTest, LimitsStatsAndKillAll) {
  Container& c = container("c1");
  ASSERT_TRUE(c.create().ok());
  ASSERT_TRUE(c.setCpus(0.5, true).ok());
  ASSERT_TRUE(c.setMemoryLimit(64 << 20).ok());
  ASSERT_TRUE(c.setPidsLimit(32).ok());
  Child child = Child::start("exec tail -f /dev/null");
  ASSERT_TRUE(c.addProcess(child.pid).ok());
  child.run();
  EXPECT_EQ(c.processes(), std::vector<pid_t>{child.pid});
  auto stats = c.stats();
  ASSERT_TRUE(stats) << stats.error();
  EXPECT_EQ(stats->memoryLimitBytes, 64u << 20);
  EXPECT_EQ(stats->processes, 1u);
  ASSERT_TRUE(c.killAll(seconds(10)).ok());
  int status = child.waitFor(seconds(10));
  ASSERT_NE(status, -1);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_TRUE(c.processes().empty());
  ASSERT_TRUE(c.destroy(seconds(10)).ok());
  EXPECT_FALSE(pathExists(c.path("memory")));
}

TEST_F(CgroupsTest, PastItsMemoryLimitAProcessIsKilledAndTheKillCounted) {
  Container& c = container("oom");
  ASSERT_TRUE(c.create().ok());
  ASSERT_TRUE(c.setMemoryLimit(32 << 20).ok());
  // The shell keeps 200 MB of output in a variable.
  Child child = Child::start("x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}");
  ASSERT_TRUE(c.addProcess(child.pid).ok());
  child.run();
  int status = child.waitFor(seconds(30));
  ASSERT_NE(status, -1);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  auto stats = c.stats();
  ASSERT_TRUE(stats) << stats.error();
  EXPECT_GE(stats->oomKills, 1u);
}

TEST_F(CgroupsTest, APidsLimitStopsAForkBomb) {
  Container& c = container("bomb");
  ASSERT_TRUE(c.create().ok());
  ASSERT_TRUE(c.setPidsLimit(16).ok());
  // Forks until it cannot; then reports how far it got.
  Child child = Child::start(
      "n=0; while [ $n -lt 100 ]; do (exec tail -f /dev/null) & "
      "if [ $? -ne 0 ]; then break; fi; n=$((n+1)); done; wait");
  ASSERT_TRUE(c.addProcess(child.pid).ok());
  child.run();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  size_t peak = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    peak = std::max(peak, c.processes().size());
    auto stats = c.stats();
    if (stats && stats->processes >= 16) break;
    std::this_thread::yield();
  }
  EXPECT_LE(c.processes().size(), 16u);
  ASSERT_TRUE(c.killAll(seconds(10)).ok());
}

TEST_F(CgroupsTest, DestroyTakesTheCgroupsMadeBelowAContainerAndTheirProcesses) {
  Container& pod = container("pod");
  ASSERT_TRUE(pod.create().ok());
  // What an executor makes for one of its tasks.
  Container task(layout_, root_ + "/pod/containers", "web");
  ASSERT_TRUE(task.create().ok());
  ASSERT_TRUE(task.setMemoryLimit(32 << 20).ok());
  Child child = Child::start("exec tail -f /dev/null");
  ASSERT_TRUE(task.addProcess(child.pid).ok());
  child.run();
  ASSERT_EQ(task.processes(), std::vector<pid_t>{child.pid});
  ASSERT_TRUE(pod.destroy(seconds(10)).ok());
  int status = child.waitFor(seconds(10));
  ASSERT_NE(status, -1);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_FALSE(pathExists(task.path("memory")));
  EXPECT_FALSE(pathExists(pod.path("memory")));
}

// cgroups v2's device control is a BPF program. This machine mounts its controllers as v1, but
// a cgroup2 hierarchy beside them (hybrid) runs device programs just the same.
TEST(CgroupsV2DevicesTest, ABpfProgramAllowsTheListedDevicesOnlyAndIsReplacedWhole) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root for cgroups and BPF";
  }
  auto detected = detectLayout();
  ASSERT_TRUE(detected) << detected.error();
  if (detected->v2Mount.empty()) {
    GTEST_SKIP() << "no cgroup2 hierarchy mounted";
  }
  Layout v2;
  v2.v2 = true;
  v2.v2Mount = detected->v2Mount;
  v2.v2Path = detected->v2Path.empty() ? "/" : detected->v2Path;
  Container c(v2, "agora-bpf-" + std::to_string(::getpid()), "dev");
  ASSERT_TRUE(makeDirectories(c.path("")).ok());
  struct Gone {
    Container parent;
    ~Gone() { EXPECT_TRUE(parent.destroy(seconds(10)).ok()); }
  } gone{Container(v2, "", "agora-bpf-" + std::to_string(::getpid()))};
  agora::testing::TempDir dir;
  std::string out = dir.path() + "/out";
  // Opens both devices once it runs, and says which it could.
  Child child = Child::start(
      "for d in null zero; do if head -c 1 /dev/$d > /dev/null 2>&1; then echo $d=yes; "
      "else echo $d=no; fi; done > " + out + ".tmp; mv " + out + ".tmp " + out + "; exec tail -f /dev/null");
  ASSERT_TRUE(c.addProcess(child.pid).ok());
  ASSERT_TRUE(c.setDevices({"c 1:3 rwm"}).ok());
  child.run();
  ASSERT_TRUE(agora::testing::waitUntil([&] { return pathExists(out); }, seconds(10)));
  EXPECT_EQ(readFile(out).value_or(""), "null=yes\nzero=no\n");
  // A new rule set replaces the old in one step.
  ASSERT_TRUE(c.setDevices({"c 1:3 rwm", "c 1:5 r"}).ok());
  Child second = Child::start("head -c 1 /dev/zero > /dev/null && { echo x > /dev/zero; } 2>&-");
  ASSERT_TRUE(c.addProcess(second.pid).ok());
  second.run();
  int status = second.waitFor(seconds(10));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << "zero is read-only: " << status;
}

}  // namespace
}  // namespace agora::cgroups
