// The batch framework's job files and its scheduling state machine, driven with offers and
// updates made here (no cluster).

#include <gtest/gtest.h>

#include "common/resources.hpp"
#include "frameworks/batch/job.hpp"
#include "frameworks/batch/job_runner.hpp"

namespace agora::batch {
namespace {

const char* kWordCount = R"(
name: wordcount
role: analytics
output: /srv/out
deadline: 10m
stages:
  - name: reduce
    depends_on: [map]
    command: cat "$AGORA_BATCH_OUTPUT"/map-* > "$AGORA_BATCH_OUTPUT/all"
    retries: 0
  - name: map
    inputs:
      - path: /data/a
        where: {hostname: node-a}
      - /data/b
    command: wc -w < "$AGORA_BATCH_INPUT" > "$AGORA_BATCH_OUTPUT/map-$AGORA_BATCH_INDEX"
    resources: cpus:1;mem:64
    retries: 1
)";

Offer offer(const std::string& id, const std::string& agent, const std::string& hostname,
            const std::string& resources = "cpus:4;mem:1024") {
  Offer o;
  o.set_id(id);
  o.set_agent_id(agent);
  o.set_hostname(hostname);
  (void)Resources::parse(resources)->copyTo(o.mutable_resources());
  return o;
}

TaskStatus status(const std::string& taskId, TaskState state) {
  TaskStatus s;
  s.set_task_id(taskId);
  s.set_state(state);
  return s;
}

std::vector<TaskInfo> launched(const Decision& d) {
  std::vector<TaskInfo> out;
  for (const auto& [offerId, tasks] : d.launch) out.insert(out.end(), tasks.begin(), tasks.end());
  return out;
}

std::string env(const TaskInfo& task, const std::string& name) {
  for (const auto& var : task.command().environment()) {
    if (var.name() == name) return var.value();
  }
  return "";
}

TEST(BatchJobTest, AJobFileIsCheckedAndOrderedByDependency) {
  auto job = parseJob(kWordCount);
  ASSERT_TRUE(job.ok()) << job.error();
  EXPECT_EQ(job->name, "wordcount");
  EXPECT_EQ(job->role, "analytics");
  ASSERT_EQ(job->stages.size(), 2u);
  EXPECT_EQ(job->stages[0].name, "map");  // before what depends on it
  EXPECT_EQ(job->stages[0].tasks, 2);
  EXPECT_EQ(job->stages[0].inputs[0].where.at("hostname"), "node-a");
  EXPECT_EQ(job->stages[0].retries, 1);
  EXPECT_EQ(job->stages[1].retries, 0);
  ASSERT_TRUE(job->deadline.has_value());

  auto error = [](const std::string& text) {
    auto parsed = parseJob(text);
    return parsed.ok() ? std::string("(parsed)") : parsed.error();
  };
  EXPECT_NE(error("name: x\nstages: []").find("list of 'stages'"), std::string::npos);
  EXPECT_NE(error("name: X\nstages: [{name: a, command: c}]").find("lower-case"),
            std::string::npos);
  EXPECT_NE(error("name: x\nstages: [{name: a}]").find("no 'command'"), std::string::npos);
  EXPECT_NE(error("name: x\nstages: [{name: a, command: c, depends_on: [b]}]")
                .find("depends on 'b', which the job lacks"),
            std::string::npos);
  EXPECT_NE(error("name: x\nstages: [{name: a, command: c, depends_on: [b]},"
                  " {name: b, command: c, depends_on: [a]}]")
                .find("cycle (a, b)"),
            std::string::npos);
  EXPECT_NE(error("name: x\nstages: [{name: a, command: c}, {name: a, command: c}]")
                .find("two stages are named 'a'"),
            std::string::npos);
  EXPECT_NE(error("name: x\nstages: [{name: a, command: c, resources: 'cpus:x'}]")
                .find("resources"),
            std::string::npos);
  EXPECT_NE(error("name: x\nstages: [{name: a, command: c, tasks: -1}]").find("whole number"),
            std::string::npos);
  EXPECT_NE(error("name: x\nstages: [{name: a, command: c, tasks: 2, inputs: [/a]}]")
                .find("not both"),
            std::string::npos);
  EXPECT_NE(error("name: x\ndeadline: soon\nstages: [{name: a, command: c}]").find("deadline"),
            std::string::npos);
  EXPECT_NE(error("name: x\nstagez: []").find("unknown field 'stagez'"), std::string::npos);
  EXPECT_NE(error("[1, 2]").find("a map"), std::string::npos);
}

TEST(BatchRunnerTest, AStageWaitsForWhatItDependsOnAndTheJobEndsWithTheLast) {
  auto job = parseJob(kWordCount);
  ASSERT_TRUE(job.ok());
  TimePoint t0;
  RunnerOptions options;
  options.localityWait = Duration::zero();
  JobRunner runner(*job, options, t0);
  EXPECT_TRUE(runner.wantsOffers());
  auto first = launched(runner.offers({offer("o1", "A", "node-a")}, t0));
  ASSERT_EQ(first.size(), 2u);  // both map tasks; reduce waits
  for (const TaskInfo& t : first) EXPECT_EQ(env(t, "AGORA_BATCH_STAGE"), "map");
  EXPECT_EQ(env(first[0], "AGORA_BATCH_INPUT"), "/data/a");
  EXPECT_EQ(env(first[1], "AGORA_BATCH_OUTPUT"), "/srv/out");
  EXPECT_FALSE(runner.wantsOffers());  // nothing pending: the scheduler suppresses
  EXPECT_EQ(runner.offers({offer("o2", "B", "node-b")}, t0).decline.size(), 1u);

  runner.update(status(first[0].task_id(), TASK_RUNNING), t0);
  runner.update(status(first[0].task_id(), TASK_FINISHED), t0);
  EXPECT_FALSE(runner.wantsOffers());  // one map task still runs
  runner.update(status(first[1].task_id(), TASK_FINISHED), t0);
  EXPECT_TRUE(runner.wantsOffers());
  auto reduce = launched(runner.offers({offer("o3", "B", "node-b")}, t0));
  ASSERT_EQ(reduce.size(), 1u);
  EXPECT_EQ(env(reduce[0], "AGORA_BATCH_STAGE"), "reduce");
  EXPECT_FALSE(runner.done());
  runner.update(status(reduce[0].task_id(), TASK_FINISHED), t0);
  EXPECT_TRUE(runner.done());
  EXPECT_FALSE(runner.failed());
  EXPECT_EQ(runner.finishedStages(), (std::vector<std::string>{"map", "reduce"}));
}

TEST(BatchRunnerTest, AFailedTaskRunsAgainElsewhereUntilItsRetriesAreSpent) {
  auto job = parseJob(kWordCount);
  ASSERT_TRUE(job.ok());
  TimePoint t0;
  RunnerOptions options;
  options.localityWait = seconds(3);
  JobRunner runner(*job, options, t0);
  // Input /data/a lives on node-a: within the wait, node-b gets only the other task.
  auto onB = launched(runner.offers({offer("o1", "B", "node-b")}, t0));
  ASSERT_EQ(onB.size(), 1u);
  EXPECT_EQ(env(onB[0], "AGORA_BATCH_INPUT"), "/data/b");
  auto onA = launched(runner.offers({offer("o2", "A", "node-a")}, t0));
  ASSERT_EQ(onA.size(), 1u);
  EXPECT_EQ(env(onA[0], "AGORA_BATCH_INPUT"), "/data/a");

  // It fails on A: it is pending again, and prefers another agent than A while the wait lasts.
  runner.update(status(onA[0].task_id(), TASK_FAILED), t0);
  EXPECT_TRUE(runner.wantsOffers());
  EXPECT_TRUE(launched(runner.offers({offer("o3", "A", "node-a")}, t0)).empty());
  auto retried = launched(runner.offers({offer("o4", "C", "node-c")}, t0 + seconds(4)));
  ASSERT_EQ(retried.size(), 1u);
  EXPECT_EQ(env(retried[0], "AGORA_BATCH_ATTEMPT"), "1");
  EXPECT_NE(retried[0].task_id(), onA[0].task_id());
  // Its one retry is spent: a second failure fails the job.
  runner.update(status(retried[0].task_id(), TASK_LOST), t0 + seconds(5));
  EXPECT_TRUE(runner.failed());
  EXPECT_NE(runner.failure().find("task 0 of stage 'map' failed 2 times; the last: TASK_LOST"),
            std::string::npos)
      << runner.failure();
  EXPECT_FALSE(runner.wantsOffers());
  EXPECT_EQ(runner.activeTasks(), std::vector<std::string>{onB[0].task_id()});
}

TEST(BatchRunnerTest, AStragglerGetsASpeculativeCopyAndTheFirstToFinishWins) {
  auto job = parseJob(R"(
name: spec
stages:
  - name: work
    tasks: 3
    command: "true"
)");
  ASSERT_TRUE(job.ok());
  TimePoint t0;
  RunnerOptions options;
  options.stragglerFactor = 3;
  options.stragglerMinimum = seconds(5);
  JobRunner runner(*job, options, t0);
  auto tasks = launched(runner.offers({offer("o1", "A", "a")}, t0));
  ASSERT_EQ(tasks.size(), 3u);
  runner.update(status(tasks[0].task_id(), TASK_FINISHED), t0 + seconds(2));
  runner.update(status(tasks[1].task_id(), TASK_FINISHED), t0 + seconds(2));
  runner.tick(t0 + seconds(5));
  EXPECT_FALSE(runner.wantsOffers());  // 5 s: not yet past max(3 x 2 s, 5 s)
  runner.tick(t0 + seconds(7));
  EXPECT_TRUE(runner.wantsOffers());
  // Never beside its twin; another agent takes the copy.
  EXPECT_TRUE(launched(runner.offers({offer("o2", "A", "a")}, t0 + seconds(7))).empty());
  auto copy = launched(runner.offers({offer("o3", "B", "b")}, t0 + seconds(7)));
  ASSERT_EQ(copy.size(), 1u);
  EXPECT_EQ(env(copy[0], "AGORA_BATCH_INDEX"), "2");
  EXPECT_NE(copy[0].name().find("speculative"), std::string::npos);
  // The copy finishes first: the original is killed, and its end changes nothing.
  auto kill = runner.update(status(copy[0].task_id(), TASK_FINISHED), t0 + seconds(8));
  EXPECT_EQ(kill, std::vector<std::string>{tasks[2].task_id()});
  EXPECT_TRUE(runner.done());
  runner.update(status(tasks[2].task_id(), TASK_KILLED), t0 + seconds(8));
  EXPECT_TRUE(runner.done());
  EXPECT_FALSE(runner.failed());
}

TEST(BatchRunnerTest, ADeadlineFailsTheJobAndFinishedStagesAreNotRunAgain) {
  auto job = parseJob(kWordCount);
  ASSERT_TRUE(job.ok());
  TimePoint t0;
  JobRunner late(*job, RunnerOptions{}, t0);
  late.tick(t0 + minutes(11));
  EXPECT_TRUE(late.failed());
  EXPECT_NE(late.failure().find("deadline"), std::string::npos);

  // A restarted framework's record says map finished: reduce is what is left.
  RunnerOptions anywhere;
  anywhere.localityWait = Duration::zero();
  JobRunner before(*job, anywhere, t0);
  for (const TaskInfo& t : launched(before.offers({offer("o0", "A", "node-a")}, t0))) {
    before.update(status(t.task_id(), TASK_FINISHED), t0);
  }
  JobRunner resumed(*job, RunnerOptions{}, t0);
  ASSERT_TRUE(resumed.restore(before.snapshot(t0), t0).ok());
  auto tasks = launched(resumed.offers({offer("o1", "A", "node-a")}, t0));
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(env(tasks[0], "AGORA_BATCH_STAGE"), "reduce");
}


TEST(BatchRunnerTest, ARecordTakenBackKeepsFinishedTasksAndFollowsRunningOnes) {
  auto job = parseJob(kWordCount);
  ASSERT_TRUE(job.ok());
  TimePoint t0;
  RunnerOptions options;
  options.localityWait = Duration::zero();
  JobRunner before(*job, options, t0);
  auto maps = launched(before.offers({offer("o1", "A", "node-a")}, t0));
  ASSERT_EQ(maps.size(), 2u);
  before.update(status(maps[0].task_id(), TASK_FINISHED), t0);
  const TaskInfo* retry = &maps[1];  // still running
  nlohmann::json record = before.snapshot(t0 + minutes(4));

  // The framework restarts: what finished stays finished, what runs is followed where it runs.
  JobRunner after(*job, options, t0 + minutes(5));
  ASSERT_TRUE(after.restore(record, t0 + minutes(5)).ok());
  EXPECT_FALSE(after.wantsOffers());
  EXPECT_TRUE(after.knows(retry->task_id()));
  EXPECT_FALSE(after.knows(maps[0].task_id()));
  EXPECT_EQ(after.activeAttempts(),
            (std::vector<std::pair<std::string, std::string>>{{retry->task_id(), "A"}}));
  EXPECT_EQ(after.progress()[0].finished, 1);  // of map
  // Lost after all (reconciliation): it runs again, under an id not used before.
  after.update(status(retry->task_id(), TASK_LOST), t0 + minutes(5));
  auto again = launched(after.offers({offer("o3", "A", "node-a")}, t0 + minutes(5)));
  ASSERT_EQ(again.size(), 1u);
  for (const TaskInfo& t : maps) EXPECT_NE(again[0].task_id(), t.task_id());
  after.update(status(again[0].task_id(), TASK_FINISHED), t0 + minutes(5));
  auto reduce = launched(after.offers({offer("o4", "A", "node-a")}, t0 + minutes(5)));
  ASSERT_EQ(reduce.size(), 1u);
  EXPECT_EQ(env(reduce[0], "AGORA_BATCH_STAGE"), "reduce");
  // The deadline (10m) counts the 4 minutes before the restart.
  after.tick(t0 + minutes(10));
  EXPECT_FALSE(after.failed());
  after.tick(t0 + minutes(12));
  EXPECT_TRUE(after.failed());

  // A record of another job, or no record, is refused.
  nlohmann::json other = record;
  other["stages"][0]["name"] = "shuffle";
  JobRunner third(*job, options, t0);
  EXPECT_FALSE(third.restore(other, t0).ok());
  other = record;
  other["stages"][0]["slots"].erase(0);
  EXPECT_FALSE(third.restore(other, t0).ok());
  EXPECT_FALSE(third.restore(nlohmann::json::array(), t0).ok());
}

}  // namespace
}  // namespace agora::batch
