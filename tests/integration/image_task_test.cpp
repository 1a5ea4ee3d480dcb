// Tasks that name an image run inside it: the test makes a two-layer busybox image (with a
// whiteout), imports it into a store the agent uses, and runs tasks with and without commands.

#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "agora/scheduler.hpp"
#include "common/fs.hpp"
#include "isolators/images/store.hpp"
#include "tests/support/cgroups_root.hpp"
#include "tests/support/process_cluster.hpp"
#include "tests/support/sandbox.hpp"
#include "tests/support/test_scheduler.hpp"
#include "tests/support/volume_scheduler.hpp"

namespace agora::testing {
namespace {

bool overlayfsAvailable() {
  std::string filesystems = readFile("/proc/filesystems").value_or("");
  return filesystems.find("overlay") != std::string::npos;
}

class ImageTaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0 || !overlayfsAvailable() || !pathExists("/bin/busybox")) {
      GTEST_SKIP() << "needs root, overlayfs and Debian's busybox-static";
    }
    store_ = images_.path() + "/store";
    std::string layers = images_.path() + "/layers";
    ASSERT_TRUE(makeDirectories(layers).ok());
    std::string busybox = readFile("/bin/busybox").value_or("");
    ASSERT_TRUE(images::writeTar(layers + "/base.tar",
                                 {{"bin", 'd', "", "", 0755},
                                  {"bin/busybox", 'f', busybox, "", 0755},
                                  {"bin/sh", 'l', "", "busybox", 0777},
                                  {"bin/ls", 'l', "", "busybox", 0777},
                                  {"bin/cat", 'l', "", "busybox", 0777},
                                  {"bin/pwd", 'l', "", "busybox", 0777},
                                  {"bin/id", 'l', "", "busybox", 0777},
                                  {"bin/sleep", 'l', "", "busybox", 0777},
                                  {"bin/test", 'l', "", "busybox", 0777},
                                  {"etc", 'd', "", "", 0755},
                                  {"etc/passwd", 'f', "root:x:0:0:root:/:/bin/sh\n"
                                                      "web:x:1234:1234:web:/:/bin/sh\n"},
                                  {"etc/group", 'f', "root:x:0:\nweb:x:1234:\n"},
                                  {"etc/hello", 'f', "hello from the image\n"},
                                  {"etc/gone", 'f', "soon gone\n"},
                                  {"srv", 'd', "", "", 0755}})
                    .ok());
    ASSERT_TRUE(images::writeTar(layers + "/top.tar", {{"etc", 'd', "", "", 0755},
                                                       {"etc/.wh.gone", 'f', ""},
                                                       {"srv/app", 'f', "app\n"}})
                    .ok());
    images::RunConfig run;
    run.entrypoint = {"/bin/sh", "-c"};
    run.cmd = {"echo entrypoint ran; ls /; cat /etc/hello; test -e /etc/gone || echo gone; "
               "pwd; echo greeting=$GREETING; id -u"};
    run.env = {"GREETING=hi from the image", "PATH=/bin"};
    run.workingDir = "/srv";
    run.user = "web";
    ASSERT_TRUE(images::writeOciArchive(images_.path() + "/tiny.tar",
                                        {layers + "/base.tar", layers + "/top.tar"}, run,
                                        "tiny:1")
                    .ok());
    images::Store store(store_);
    auto imported = store.import(images_.path() + "/tiny.tar");
    ASSERT_TRUE(imported.ok()) << imported.error();

    root_ = "agora-img-" + std::to_string(::getpid());
    ProcessClusterOptions options;
    options.agents = 1;
    options.agentFlags = {"--image_store=" + store_,
                          "--isolation=cgroups/cpu,cgroups/mem,namespaces/pid,namespaces/mount,"
                          "namespaces/uts,namespaces/ipc",
                          "--cgroups_root=" + root_};
    cluster_ = std::make_unique<ProcessCluster>(options);
    ASSERT_TRUE(cluster_->start().ok()) << "see " << cluster_->dir();
  }
  void TearDown() override {
    if (cluster_ != nullptr) {
      cluster_->stop();
    }
    removeCgroupsRoot(root_);
    // Every overlay was the task's own: none is left on the host.
    std::string mounts = readFile("/proc/self/mountinfo").value_or("");
    EXPECT_EQ(mounts.find(".rootfs/merged"), std::string::npos) << mounts;
  }

  static TaskInfo imageTask(const std::string& id, const std::string& image) {
    TaskInfo task = TestScheduler::commandTask(id, "", "cpus:0.1;mem:64");
    task.clear_command();
    task.mutable_container()->set_image(image);
    return task;
  }
  std::string stdoutOf(const std::string& id) {
    return executorStdout(cluster_->agentWorkDir(0), id);
  }

  TempDir images_;
  std::string store_;
  std::string root_;
  std::unique_ptr<ProcessCluster> cluster_;
};

TEST_F(ImageTaskTest, ATaskWithNoCommandRunsTheImagesEntrypointInItsTree) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  scheduler.launch(imageTask("plain", "tiny:1"));
  driver.start();
  TaskStatus end = scheduler.waitForEnd("plain");
  EXPECT_EQ(end.state(), TASK_FINISHED) << end.message() << "; see " << cluster_->dir();
  std::string out = stdoutOf("plain");
  EXPECT_NE(out.find("entrypoint ran\n"), std::string::npos) << out;
  // The image's tree, not the host's (which has /usr), and the whiteout honoured.
  EXPECT_NE(out.find("srv"), std::string::npos) << out;
  EXPECT_EQ(out.find("usr"), std::string::npos) << out;
  EXPECT_NE(out.find("hello from the image\ngone\n"), std::string::npos) << out;
  // Its WorkingDir, Env and User.
  EXPECT_NE(out.find("/srv\ngreeting=hi from the image\n1234\n"), std::string::npos) << out;
  driver.stop();
  driver.join();
}

TEST_F(ImageTaskTest, CommandAndArgumentsOverrideTheImageAsKubernetesDoes) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  // Arguments alone replace Cmd: the entrypoint (sh -c) runs them.
  TaskInfo args = imageTask("args", "tiny:1");
  args.mutable_command()->set_shell(false);
  args.mutable_command()->add_arguments("echo args=$GREETING; pwd");
  auto* own = args.mutable_command()->add_environment();
  own->set_name("GREETING");
  own->set_value("the task's own");
  scheduler.launch(args);
  // A command replaces Entrypoint and Cmd; the working directory and user can be set too.
  TaskInfo command = imageTask("command", "tiny:1");
  command.mutable_command()->set_shell(false);
  command.mutable_command()->set_value("/bin/cat");
  command.mutable_command()->add_arguments("cat");
  command.mutable_command()->add_arguments("/srv/app");
  command.mutable_container()->set_user("root");
  scheduler.launch(command);
  // A shell command runs under the image's /bin/sh.
  TaskInfo shell = imageTask("shell", "tiny:1");
  shell.mutable_command()->set_value("echo shell in $(pwd) as $(id -u); ls /mnt/agora");
  shell.mutable_container()->set_working_dir("/etc");
  scheduler.launch(shell);
  // An image that is not in the store.
  scheduler.launch(imageTask("missing", "nowhere:2"));
  driver.start();

  for (const char* id : {"args", "command", "shell"}) {
    TaskStatus end = scheduler.waitForEnd(id);
    EXPECT_EQ(end.state(), TASK_FINISHED) << id << ": " << end.message();
  }
  EXPECT_EQ(stdoutOf("args"), "args=the task's own\n/srv\n");
  EXPECT_EQ(stdoutOf("command"), "app\n");
  EXPECT_EQ(stdoutOf("shell"), "shell in /etc as 1234\nsandbox\n");
  TaskStatus missing = scheduler.waitForEnd("missing");
  EXPECT_EQ(missing.state(), TASK_FAILED);
  EXPECT_EQ(missing.reason(), TaskStatus::REASON_CONTAINER_LAUNCH_FAILED);
  EXPECT_NE(missing.message().find("no image 'nowhere:2'"), std::string::npos) << missing.message();
  EXPECT_NE(missing.message().find("agora image import"), std::string::npos) << missing.message();
  driver.stop();
  driver.join();
}

TEST_F(ImageTaskTest, CommandHealthChecksRunInTheImage) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  auto checked = [](const std::string& id, const std::string& check) {
    TaskInfo task = imageTask(id, "tiny:1");
    task.mutable_command()->set_value("exec sleep 1000");  // ok: the task's own command
    HealthCheck* health = task.mutable_health_check();
    health->set_type(HealthCheck::COMMAND);
    health->mutable_command()->set_value(check);
    health->set_interval_seconds(0.2);
    health->set_consecutive_failures(1);
    return task;
  };
  // /srv/app is in the image; /usr only on the host; and it runs as the image's user.
  scheduler.launch(checked("inside", "test -e /srv/app && [ $(id -u) = 1234 ]"));
  scheduler.launch(checked("outside", "test -e /usr"));
  driver.start();
  EXPECT_TRUE(scheduler.waitForStatus("inside", [](const TaskStatus& s) {
    return s.state() == TASK_RUNNING && s.has_healthy() && s.healthy();
  })) << "see " << cluster_->dir();
  TaskStatus outside = scheduler.waitForEnd("outside");
  EXPECT_EQ(outside.state(), TASK_KILLED) << outside.message();
  EXPECT_TRUE(outside.has_healthy() && !outside.healthy());
  driver.kill("inside");
  EXPECT_EQ(scheduler.waitForEnd("inside").state(), TASK_KILLED);
  driver.stop();
  driver.join();
}

TEST_F(ImageTaskTest, ATaskInAnImageRunsThroughAnAgentRestartAndLeavesNoMount) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  TaskInfo task = imageTask("gated", "tiny:1");
  const char* gated = "while [ ! -e /mnt/agora/sandbox/go ]; do sleep 0.05; done";  // ok: polls
  task.mutable_command()->set_value(std::string(gated) + "; echo through");
  scheduler.launch(task);
  driver.start();
  ASSERT_TRUE(scheduler.waitForState("gated", TASK_RUNNING));
  cluster_->killAgent(0);
  ASSERT_TRUE(cluster_->restartAgent(0).ok());
  // Its overlay lives in its own mount namespace: the host never had it.
  EXPECT_EQ(readFile("/proc/self/mountinfo").value_or("").find(".rootfs/merged"),
            std::string::npos);
  auto sandbox = runCommand({"/bin/sh", "-c",
                             "echo " + cluster_->agentWorkDir(0) +
                                 "/frameworks/*/executors/gated/runs/*"},
                            seconds(5));
  std::string dir = sandbox.output.substr(0, sandbox.output.find('\n'));
  ASSERT_TRUE(writeFileAtomic(dir + "/go", "").ok());
  TaskStatus end = scheduler.waitForEnd("gated");
  EXPECT_EQ(end.state(), TASK_FINISHED) << end.message();
  EXPECT_EQ(stdoutOf("gated"), "through\n");
  driver.stop();
  driver.join();
}

TEST_F(ImageTaskTest, APersistentVolumeIsMountedIntoTheImage) {
  // Written by a task on the host, read by one in the image, at its sandbox-relative path.
  VolumeScheduler scheduler("tiny:1", "test \"$(cat /mnt/agora/sandbox/data/file)\" = kept");
  FrameworkInfo info = testFramework("volumes");
  info.add_roles("db");
  SchedulerDriver driver(&scheduler, info, cluster_->masterHttp());
  driver.start();
  EXPECT_EQ(scheduler.waitForEnd("writer"), TASK_FINISHED);
  EXPECT_EQ(scheduler.waitForEnd("reader"), TASK_FINISHED) << "see " << cluster_->dir();
  EXPECT_TRUE(scheduler.errors().empty());
  driver.stop();
  driver.join();
}

}  // namespace
}  // namespace agora::testing
