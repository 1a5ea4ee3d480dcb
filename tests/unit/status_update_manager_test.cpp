#include <gtest/gtest.h>

#include "agent/status_update_manager.hpp"
#include "common/ids.hpp"
#include "common/manual_loop.hpp"

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

}  // namespace
}  // namespace agora::agent
