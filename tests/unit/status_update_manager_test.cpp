#include <gtest/gtest.h>

#include "agent/checkpoint.hpp"
#include "agent/status_update_manager.hpp"
#include "common/fs.hpp"
#include "common/ids.hpp"
#include "common/manual_loop.hpp"
#include "tests/support/temp_dir.hpp"

namespace agora::agent {
namespace {

class StatusUpdateManagerTest : public ::testing::Test {
 protected:
  StatusUpdateManagerTest()
      : manager_(loop_, {seconds(1), seconds(8)},
                 [this](const std::string& fw, const TaskStatus& s, TaskState latest) {
                   sent_.push_back({s.task_id(), s.state(), latest, s.uuid()});
                   return true;
                 }) {
    manager_.resume();
  }

  TaskStatus status(const std::string& task, TaskState state) {
    TaskStatus s;
    s.set_task_id(task);
    s.set_state(state);
    s.set_uuid(uuidBytes());
    return s;
  }

  struct Sent {
    std::string task;
    TaskState state;
    TaskState latest;
    std::string uuid;
  };

  ManualLoop loop_;
  std::vector<Sent> sent_;
  StatusUpdateManager manager_;
};

TEST_F(StatusUpdateManagerTest, SendsInOrderOneAtATime) {
  TaskStatus running = status("t1", TASK_RUNNING);
  TaskStatus finished = status("t1", TASK_FINISHED);
  EXPECT_TRUE(manager_.update("f", running));
  EXPECT_TRUE(manager_.update("f", finished));
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].state, TASK_RUNNING);
  EXPECT_EQ(sent_[0].latest, TASK_RUNNING);
  EXPECT_EQ(manager_.pending(), 2u);

  EXPECT_FALSE(manager_.acknowledge("f", "t1", finished.uuid()));  // not the head
  EXPECT_TRUE(manager_.acknowledge("f", "t1", running.uuid()));
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[1].state, TASK_FINISHED);
  EXPECT_EQ(sent_[1].latest, TASK_FINISHED);
  EXPECT_TRUE(manager_.acknowledge("f", "t1", finished.uuid()));
  EXPECT_EQ(manager_.pending(), 0u);
  EXPECT_FALSE(manager_.hasStream("f", "t1"));
}

TEST_F(StatusUpdateManagerTest, RetriesWithBackoffUntilAcknowledged) {
  TaskStatus running = status("t1", TASK_RUNNING);
  manager_.update("f", running);
  ASSERT_EQ(sent_.size(), 1u);
  // Retries at 1s, then 2s later (3s), then 4s later (7s), then every 8s at most.
  loop_.advance(milliseconds(900));
  EXPECT_EQ(sent_.size(), 1u);
  loop_.advance(milliseconds(400));  // 1.3s
  EXPECT_EQ(sent_.size(), 2u);
  loop_.advance(milliseconds(1600));  // 2.9s
  EXPECT_EQ(sent_.size(), 2u);
  loop_.advance(milliseconds(200));  // 3.1s
  EXPECT_EQ(sent_.size(), 3u);
  loop_.advance(milliseconds(3800));  // 6.9s
  EXPECT_EQ(sent_.size(), 3u);
  loop_.advance(milliseconds(200));  // 7.1s
  EXPECT_EQ(sent_.size(), 4u);
  loop_.advance(seconds(80));  // capped at 8s: ten more
  EXPECT_EQ(sent_.size(), 14u);
  manager_.acknowledge("f", "t1", running.uuid());
  size_t before = sent_.size();
  loop_.advance(seconds(60));
  EXPECT_EQ(sent_.size(), before);
  EXPECT_GT(manager_.retries(), 0u);
}

TEST_F(StatusUpdateManagerTest, FlushResendsAFrameworksHeadsAtOnce) {
  manager_.update("f", status("t1", TASK_RUNNING));
  manager_.update("g", status("t2", TASK_RUNNING));
  loop_.advance(milliseconds(1100));  // one retry each
  ASSERT_EQ(sent_.size(), 4u);
  manager_.flush("f");
  ASSERT_EQ(sent_.size(), 5u);
  EXPECT_EQ(sent_.back().task, "t1");
  loop_.advance(milliseconds(800));  // 1.9s: f's back-off started again at 1s
  EXPECT_EQ(sent_.size(), 5u);
  loop_.advance(milliseconds(500));  // 2.4s: retried (the sweep runs every 250ms)
  EXPECT_EQ(sent_.size(), 6u);
}

TEST_F(StatusUpdateManagerTest, DuplicatesAreIgnoredAndPauseHoldsEverything) {
  TaskStatus running = status("t1", TASK_RUNNING);
  manager_.update("f", running);
  EXPECT_FALSE(manager_.update("f", running));
  manager_.pause();
  manager_.update("f", status("t2", TASK_RUNNING));
  loop_.advance(seconds(30));
  EXPECT_EQ(sent_.size(), 1u);
  manager_.resume();
  EXPECT_EQ(sent_.size(), 3u);  // both heads, at once
  manager_.cleanupFramework("f");
  EXPECT_EQ(manager_.pending(), 0u);
}

// Durable streams: what one manager wrote, a new one (a restarted agent) reads back.
TEST(DurableStatusUpdatesTest, ANewManagerRecoversWhatWasNotAcknowledged) {
  agora::testing::TempDir dir;
  ManualLoop loop;
  StatusUpdateManager::Options options{seconds(1), seconds(8), dir.path()};
  std::vector<std::string> sent;
  auto forward = [&](const std::string& fw, const TaskStatus& s, TaskState) {
    sent.push_back(fw + "/" + s.task_id() + "/" + TaskState_Name(s.state()));
    return true;
  };
  auto status = [](const std::string& task, TaskState state) {
    TaskStatus s;
    s.set_task_id(task);
    s.set_state(state);
    s.set_uuid(uuidBytes());
    s.set_executor_id("e-" + task);
    return s;
  };
  TaskStatus aRunning = status("a", TASK_RUNNING);
  TaskStatus aFinished = status("a", TASK_FINISHED);
  TaskStatus bFailed = status("b", TASK_FAILED);
  TaskStatus cFinished = status("c", TASK_FINISHED);
  {
    StatusUpdateManager first(loop, options, forward);
    first.resume();
    first.update("f1", aRunning);
    first.update("f1", aFinished);
    first.acknowledge("f1", "a", aRunning.uuid());  // a: FINISHED left
    first.update("f1", bFailed);                    // b: FAILED left
    first.update("f2", cFinished);
    first.acknowledge("f2", "c", cFinished.uuid());  // c: done, its log removed
  }
  EXPECT_FALSE(pathExists(dir.path() + "/f2/c"));

  sent.clear();
  StatusUpdateManager second(loop, options, forward);
  EXPECT_TRUE(second.recover().empty());
  EXPECT_EQ(second.pending(), 2u);
  EXPECT_EQ(second.latest("f1", "a"), TASK_FINISHED);
  EXPECT_EQ(second.latest("f1", "b"), TASK_FAILED);
  EXPECT_FALSE(second.latest("f2", "c").has_value());
  std::vector<std::string> streams;
  second.forEachStream([&](const std::string& fw, const std::string& task, const TaskStatus& head,
                           TaskState latest) {
    streams.push_back(fw + "/" + task + "/" + head.executor_id() + "/" + TaskState_Name(latest));
  });
  EXPECT_EQ(streams, (std::vector<std::string>{"f1/a/e-a/TASK_FINISHED", "f1/b/e-b/TASK_FAILED"}));
  EXPECT_TRUE(sent.empty());  // paused until the agent is registered
  second.resume();
  EXPECT_EQ(sent, (std::vector<std::string>{"f1/a/TASK_FINISHED", "f1/b/TASK_FAILED"}));
  EXPECT_FALSE(second.update("f1", aFinished));  // still a duplicate after the restart
  EXPECT_TRUE(second.acknowledge("f1", "a", aFinished.uuid()));
  EXPECT_FALSE(pathExists(dir.path() + "/f1/a"));
  second.cleanupFramework("f1");
  EXPECT_FALSE(pathExists(dir.path() + "/f1"));
}

TEST(DurableStatusUpdatesTest, ATornLastRecordIsLeftOutAndACorruptLogSetAside) {
  agora::testing::TempDir dir;
  ASSERT_TRUE(makeDirectories(dir.path() + "/f").ok());
  TaskStatus running;
  running.set_task_id("t");
  running.set_state(TASK_RUNNING);
  running.set_uuid(uuidBytes());
  checkpoint::UpdateRecord record;
  *record.mutable_update() = running;
  ASSERT_TRUE(checkpoint::appendUpdate(dir.path() + "/f/t", record).ok());
  ASSERT_TRUE(checkpoint::appendUpdate(dir.path() + "/f/u", record).ok());
  auto whole = readFile(dir.path() + "/f/t");
  ASSERT_TRUE(whole.ok());
  // A crash in mid-append: half of a second record.
  ASSERT_TRUE(writeFileAtomic(dir.path() + "/f/t", *whole + whole->substr(0, whole->size() / 2))
                  .ok());
  // A flipped byte in a record that is not the last: the log cannot be trusted.
  std::string bad = *whole;
  bad[bad.size() - 1] ^= 0x5a;
  ASSERT_TRUE(writeFileAtomic(dir.path() + "/f/u", bad + *whole).ok());

  auto log = checkpoint::readUpdates(dir.path() + "/f/t");
  ASSERT_TRUE(log.ok()) << log.error();
  EXPECT_TRUE(log->tornTail);
  ASSERT_EQ(log->records.size(), 1u);
  EXPECT_EQ(log->records[0].update().uuid(), running.uuid());

  ManualLoop loop;
  StatusUpdateManager manager(loop, {seconds(1), seconds(8), dir.path()},
                              [](const std::string&, const TaskStatus&, TaskState) { return true; });
  auto errors = manager.recover();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("fails its checksum"), std::string::npos) << errors[0];
  EXPECT_TRUE(pathExists(dir.path() + "/f/u.corrupt"));
  EXPECT_EQ(manager.latest("f", "t"), TASK_RUNNING);
  EXPECT_FALSE(manager.latest("f", "u").has_value());
}

}  // namespace
}  // namespace agora::agent
