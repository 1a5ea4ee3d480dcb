// GPUs without GPUs: a fake NVML library (tests/support/fake_nvml.cpp) and device files made
// with mknod stand in for the driver. Opening a GPU's device file that the devices cgroup
// allows fails with ENXIO (there is no driver behind it); one it denies fails with EPERM. So the
// tests see exactly which GPUs a container may use.

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdlib>
#include <set>

#include <gtest/gtest.h>

#include "agora/scheduler.hpp"
#include "common/fs.hpp"
#include "isolators/cgroups.hpp"
#include "isolators/gpu.hpp"
#include "isolators/images/store.hpp"
#include "tests/support/cgroups_root.hpp"
#include "tests/support/process_cluster.hpp"
#include "tests/support/sandbox.hpp"
#include "tests/support/test_scheduler.hpp"

namespace agora::testing {
namespace {

// /dev/nvidia0..n-1 and nvidiactl, as the driver makes them.
Status makeDevices(const std::string& dir, int gpus) {
  if (Status made = makeDirectories(dir); !made) {
    return made;
  }
  for (int i = 0; i < gpus; ++i) {
    std::string path = dir + "/nvidia" + std::to_string(i);
    if (::mknod(path.c_str(), S_IFCHR | 0666, makedev(195, i)) != 0) {
      return Error("mknod " + path);
    }
  }
  std::string ctl = dir + "/nvidiactl";
  if (::mknod(ctl.c_str(), S_IFCHR | 0666, makedev(195, 255)) != 0) {
    return Error("mknod " + ctl);
  }
  return ok();
}

TEST(GpuDiscoveryTest, ThroughNvmlOrTheGpusFlag) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "making device files needs root";
  }
  TempDir dir;
  std::string dev = dir.path() + "/dev";
  ASSERT_TRUE(makeDevices(dev, 4).ok());

  ::unsetenv("FAKE_NVML_GPUS");
  ::unsetenv("FAKE_NVML_FAIL");
  auto found = gpu::discover({"", dev, AGORA_FAKE_NVML});
  ASSERT_TRUE(found.ok()) << found.error();
  ASSERT_EQ(found->gpus.size(), 4u);
  EXPECT_EQ(found->gpus[2].uuid, "GPU-fake-2");
  EXPECT_EQ(found->gpus[2].name, "Fake GPU");
  EXPECT_EQ(found->gpus[2].rule(), "c 195:2 rwm");
  EXPECT_EQ(found->controlRules, std::vector<std::string>{"c 195:255 rwm"});
  EXPECT_NE(found->source.find("fake-1.0"), std::string::npos) << found->source;

  ::setenv("FAKE_NVML_GPUS", "2", 1);
  EXPECT_EQ(gpu::discover({"", dev, AGORA_FAKE_NVML})->gpus.size(), 2u);
  ::unsetenv("FAKE_NVML_GPUS");

  // A driver that is not loaded, or none at all: no GPUs, and the reason.
  ::setenv("FAKE_NVML_FAIL", "1", 1);
  found = gpu::discover({"", dev, AGORA_FAKE_NVML});
  ::unsetenv("FAKE_NVML_FAIL");
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->gpus.empty());
  EXPECT_NE(found->source.find("Driver Not Loaded"), std::string::npos) << found->source;
  found = gpu::discover({"", dev, dir.path() + "/no-libnvidia-ml.so.1"});
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->gpus.empty());
  EXPECT_NE(found->source.find("no NVIDIA driver"), std::string::npos) << found->source;

  // Named by the operator.
  found = gpu::discover({"0,2", dev, AGORA_FAKE_NVML});
  ASSERT_TRUE(found.ok()) << found.error();
  ASSERT_EQ(found->gpus.size(), 2u);
  EXPECT_EQ(found->gpus[1].minor, 2u);
  EXPECT_NE(gpu::discover({"0,7", dev, ""}).error().find("nvidia7"), std::string::npos);
  EXPECT_FALSE(gpu::parseIndexes("1,1").ok());
  EXPECT_FALSE(gpu::parseIndexes("a").ok());
  EXPECT_FALSE(gpu::parseIndexes("").ok());
  EXPECT_EQ(*gpu::parseIndexes("3,0"), (std::vector<uint32_t>{3, 0}));
}

// Which of the 4 GPUs the task could open, as "0=allowed 1=denied ...", and what it was told.
std::string probeCommand(const std::string& dev) {
  return "for d in 0 1 2 3; do if cat " + dev +
         "/nvidia$d 2>&1 | grep -q 'not permitted'; then s=denied; else s=allowed; fi; "
         "printf '%s=%s ' $d $s; done; "
         "cat " +
         dev +
         "/nvidiactl 2>&1 | grep -q 'not permitted' && printf 'ctl=denied ' || "
         "printf 'ctl=allowed '; echo \"gpus=$AGORA_GPUS visible=$NVIDIA_VISIBLE_DEVICES\"";
}

class GpuClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "device files and the devices cgroup need root";
    }
    auto layout = cgroups::detectLayout();
    if (!layout || layout->v2) {
      GTEST_SKIP() << "GPU isolation needs the devices cgroup (v1)";
    }
    root_ = "agora-gpu-" + std::to_string(::getpid());
    dev_ = devDir_.path() + "/dev";
    ASSERT_TRUE(makeDevices(dev_, 4).ok());
    ::unsetenv("FAKE_NVML_GPUS");
    ProcessClusterOptions options;
    options.agents = 1;
    options.agentFlags = {"--isolation=cgroups/mem,gpu/nvidia", "--cgroups_root=" + root_,
                          std::string("--nvml_library=") + AGORA_FAKE_NVML,
                          "--nvidia_dev_dir=" + dev_,
                          "--image_store=" + devDir_.path() + "/images"};
    cluster_ = std::make_unique<ProcessCluster>(options);
    ASSERT_TRUE(cluster_->start().ok()) << "see " << cluster_->dir();
  }
  void TearDown() override {
    if (cluster_ != nullptr) {
      cluster_->stop();
    }
    removeCgroupsRoot(root_);
  }

  TempDir devDir_;
  std::string dev_;
  std::string root_;
  std::unique_ptr<ProcessCluster> cluster_;
};

TEST_F(GpuClusterTest, EachTaskMayOpenItsOwnGpusAndNoOthers) {
  auto state = cluster_->masterState();
  ASSERT_TRUE(state.ok());
  EXPECT_DOUBLE_EQ((*state)["agents"][0]["resources"].value("gpus", 0.0), 4.0)
      << (*state)["agents"][0].dump();

  TestScheduler scheduler;
  FrameworkInfo info = testFramework();
  info.add_capabilities(FrameworkInfo::GPU_RESOURCES);
  SchedulerDriver driver(&scheduler, info, cluster_->masterHttp());
  scheduler.launch(TestScheduler::commandTask("one", probeCommand(dev_), "cpus:0.1;mem:32;gpus:1"));
  scheduler.launch(TestScheduler::commandTask("two", probeCommand(dev_), "cpus:0.1;mem:32;gpus:2"));
  scheduler.launch(TestScheduler::commandTask("none", probeCommand(dev_), "cpus:0.1;mem:32"));
  driver.start();

  std::map<std::string, std::string> out;
  for (const char* id : {"one", "two", "none"}) {
    TaskStatus end = scheduler.waitForEnd(id);
    EXPECT_EQ(end.state(), TASK_FINISHED) << id << ": " << end.message();
    out[id] = executorStdout(cluster_->agentWorkDir(0), id);
  }
  // Which GPUs each one may open: its own, and only those.
  auto allowed = [](const std::string& text) {
    std::set<std::string> gpus;
    for (const char* d : {"0", "1", "2", "3"}) {
      if (text.find(std::string(d) + "=allowed") != std::string::npos) {
        gpus.insert(d);
      }
    }
    return gpus;
  };
  auto told = [](const std::string& text) {
    size_t at = text.find("gpus=");
    return at == std::string::npos ? std::string()
                                   : text.substr(at + 5, text.find(' ', at) - at - 5);
  };
  std::set<std::string> one = allowed(out["one"]);
  std::set<std::string> two = allowed(out["two"]);
  EXPECT_EQ(one.size(), 1u) << out["one"];
  EXPECT_EQ(two.size(), 2u) << out["two"];
  for (const std::string& g : one) {
    EXPECT_EQ(two.count(g), 0u) << "GPU " << g << " given twice: " << out["one"] << out["two"];
  }
  EXPECT_EQ(told(out["one"]), *one.begin()) << out["one"];
  EXPECT_NE(out["one"].find("visible=GPU-fake-" + *one.begin()), std::string::npos) << out["one"];
  EXPECT_NE(out["one"].find("ctl=allowed"), std::string::npos) << out["one"];
  // No GPU asked for: none allowed, none named.
  EXPECT_TRUE(allowed(out["none"]).empty()) << out["none"];
  EXPECT_NE(out["none"].find("ctl=denied"), std::string::npos) << out["none"];
  EXPECT_EQ(told(out["none"]), "") << out["none"];

  // GPUs are whole.
  scheduler.launch(TestScheduler::commandTask("half", "true", "cpus:0.1;mem:32;gpus:0.5"), &driver);
  TaskStatus half = scheduler.waitForEnd("half");
  EXPECT_EQ(half.state(), TASK_ERROR);
  EXPECT_NE(half.message().find("GPUs are given whole"), std::string::npos) << half.message();

  // Their GPUs came back: all four fit one task now.
  scheduler.launch(TestScheduler::commandTask("all", probeCommand(dev_), "cpus:0.1;mem:32;gpus:4"),
                   &driver);
  TaskStatus all = scheduler.waitForEnd("all");
  EXPECT_EQ(all.state(), TASK_FINISHED) << all.message();
  driver.stop();
  driver.join();
}

TEST_F(GpuClusterTest, ARestartedAgentKnowsWhichGpusAreTaken) {
  TestScheduler scheduler;
  FrameworkInfo info = testFramework();
  info.add_capabilities(FrameworkInfo::GPU_RESOURCES);
  SchedulerDriver driver(&scheduler, info, cluster_->masterHttp());
  std::string gate = cluster_->agentWorkDir(0) + "/go";
  std::string wait = "while [ ! -e " + gate + " ]; do sleep 0.05; done";  // ok: polls its gate
  scheduler.launch(TestScheduler::commandTask("held", probeCommand(dev_) + "; " + wait,
                                              "cpus:0.1;mem:32;gpus:2"));
  driver.start();
  ASSERT_TRUE(scheduler.waitForState("held", TASK_RUNNING));
  cluster_->killAgent(0);
  ASSERT_TRUE(cluster_->restartAgent(0).ok());
  // The new agent gives the next task the two GPUs the held one does not have.
  scheduler.launch(TestScheduler::commandTask("next", probeCommand(dev_), "cpus:0.1;mem:32;gpus:2"),
                   &driver);
  TaskStatus next = scheduler.waitForEnd("next");
  EXPECT_EQ(next.state(), TASK_FINISHED) << next.message();
  ASSERT_TRUE(writeFileAtomic(gate, "").ok());
  EXPECT_EQ(scheduler.waitForEnd("held").state(), TASK_FINISHED);
  std::string held = executorStdout(cluster_->agentWorkDir(0), "held");
  std::string after = executorStdout(cluster_->agentWorkDir(0), "next");
  for (const char* d : {"0", "1", "2", "3"}) {
    bool a = held.find(std::string(d) + "=allowed") != std::string::npos;
    bool b = after.find(std::string(d) + "=allowed") != std::string::npos;
    EXPECT_TRUE(a != b) << "GPU " << d << ": " << held << " / " << after;
  }
  driver.stop();
  driver.join();
}

TEST_F(GpuClusterTest, ATaskInAnImageFindsItsGpusInItsDev) {
  if (!pathExists("/bin/busybox")) {
    GTEST_SKIP() << "needs Debian's busybox-static";
  }
  // A busybox image with what the probe needs.
  std::string tree = devDir_.path() + "/tree";
  ASSERT_TRUE(makeDirectories(tree + "/bin").ok());
  ASSERT_TRUE(writeFileAtomic(tree + "/bin/busybox", readFile("/bin/busybox").value_or("")).ok());
  ASSERT_EQ(::chmod((tree + "/bin/busybox").c_str(), 0755), 0);
  for (const char* tool : {"sh", "cat", "grep", "printf", "ls"}) {
    ASSERT_EQ(::symlink("busybox", (tree + "/bin/" + tool).c_str()), 0);
  }
  images::Store store(devDir_.path() + "/images");
  ASSERT_TRUE(store.buildFromDirectory(tree, "probe:1", {}).ok());

  TestScheduler scheduler;
  FrameworkInfo info = testFramework();
  info.add_capabilities(FrameworkInfo::GPU_RESOURCES);
  SchedulerDriver driver(&scheduler, info, cluster_->masterHttp());
  TaskInfo task = TestScheduler::commandTask(
      "imaged", "ls /dev | grep nvidia | tr '\\n' ' '; echo; " + probeCommand("/dev"),
      "cpus:0.1;mem:32;gpus:1");
  task.mutable_container()->set_image("probe:1");
  task.mutable_command()->set_value("export PATH=/bin; " + task.command().value());
  scheduler.launch(task);
  driver.start();
  TaskStatus end = scheduler.waitForEnd("imaged");
  EXPECT_EQ(end.state(), TASK_FINISHED) << end.message();
  std::string out = executorStdout(cluster_->agentWorkDir(0), "imaged");
  // Only its GPU (and the driver's control device) are in its /dev, and it may open it.
  size_t at = out.find("gpus=");
  ASSERT_NE(at, std::string::npos) << out;
  std::string gpu = out.substr(at + 5, 1);
  EXPECT_EQ(out.substr(0, out.find('\n')), "nvidia" + gpu + " nvidiactl ") << out;
  EXPECT_NE(out.find(gpu + "=allowed"), std::string::npos) << out;
  EXPECT_NE(out.find("ctl=allowed"), std::string::npos) << out;
  driver.stop();
  driver.join();
}

}  // namespace
}  // namespace agora::testing
