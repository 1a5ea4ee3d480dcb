// The batch framework on a real cluster: `agora batch run` with a word count whose output is
// checked against a count made here, while one of its tasks is killed midway.

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/fs.hpp"
#include "common/process.hpp"
#include "tests/support/process_cluster.hpp"
#include "tests/support/temp_dir.hpp"

namespace agora::testing {
namespace {

// A named pipe held open for writing: tasks that read it (`cat < PIPE`) wait until release().
class Gate {
 public:
  explicit Gate(std::string path) : path_(std::move(path)) {}
  ~Gate() { release(); }
  // A new pipe at the path, held.
  bool open() {
    release();
    (void)removeAll(path_);
    if (::mkfifo(path_.c_str(), 0644) != 0) return false;
    fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);  // O_RDWR: does not wait for a reader
    return fd_ >= 0;
  }
  // Its readers read the end of the pipe.
  void release() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

class BatchTest : public ::testing::Test {
 protected:
  BatchTest() : cluster_(ProcessClusterOptions{2, "cpus:2;mem:2048;disk:1024"}) {}
  void SetUp() override { ASSERT_TRUE(cluster_.start().ok()) << "see " << cluster_.dir(); }

  TempDir dir_;
  ProcessCluster cluster_;
};

TEST_F(BatchTest, AWordCountMatchesItsReferenceThoughATaskIsKilledMidway) {
  // Six text files of pseudo-random words, and their count, made here.
  std::map<std::string, int> reference;
  std::string inputs;
  uint32_t seed = 7;
  const char* words[] = {"agora", "mesos", "offer", "task", "agent", "role", "quota", "stage"};
  for (int f = 0; f < 6; ++f) {
    std::string path = dir_.path() + "/text-" + std::to_string(f);
    std::ostringstream text;
    for (int i = 0; i < 500 + 100 * f; ++i) {
      seed = seed * 1103515245 + 12345;
      std::string word = words[(seed >> 16) % 8];
      ++reference[word];
      text << word << ((i % 12 == 11) ? "\n" : " ");
    }
    ASSERT_TRUE(writeFileAtomic(path, text.str()).ok());
    inputs += "      - " + path + "\n";
  }
  std::string out = dir_.path() + "/out";
  ASSERT_TRUE(makeDirectories(out).ok());
  // Map task 2's first attempt writes its pid and waits to be killed; every other attempt
  // counts. Reduce refuses to run unless every map output is there (it waited for them).
  std::string job = "name: wordcount\noutput: " + out + R"JOB(
stages:
  - name: map
    inputs:
)JOB" + inputs + R"JOB(    command: |
      if [ "$AGORA_BATCH_INDEX" = 2 ] && [ "$AGORA_BATCH_ATTEMPT" = 0 ]; then
        echo $$ > "$AGORA_BATCH_OUTPUT/victim.pid"; exec tail -f /dev/null
      fi
      tr -s ' \n' '\n\n' < "$AGORA_BATCH_INPUT" | grep -v '^$' | LC_ALL=C sort | uniq -c \
        > "$AGORA_BATCH_OUTPUT/map-$AGORA_BATCH_INDEX.tmp"
      mv "$AGORA_BATCH_OUTPUT/map-$AGORA_BATCH_INDEX.tmp" "$AGORA_BATCH_OUTPUT/map-$AGORA_BATCH_INDEX"
    retries: 2
  - name: reduce
    depends_on: [map]
    retries: 0
    command: |
      [ "$(ls "$AGORA_BATCH_OUTPUT"/map-? | wc -l)" = 6 ] || exit 9
      cat "$AGORA_BATCH_OUTPUT"/map-? | awk '{c[$2] += $1} END {for (w in c) print w, c[w]}' \
        | LC_ALL=C sort > "$AGORA_BATCH_OUTPUT/counts"
)JOB";
  ASSERT_TRUE(writeFileAtomic(dir_.path() + "/job.yaml", job).ok());

  CommandResult run;
  std::thread batch([&] {
    run = runCommand({AGORA_BINARY, "batch", "run", dir_.path() + "/job.yaml",
                      "--master=" + cluster_.masterHttp(), "--locality_wait=0secs"},
                     seconds(120));
  });
  // The victim runs: kill it midway.
  ASSERT_TRUE(waitUntil([&] { return pathExists(out + "/victim.pid"); }, seconds(60)));
  std::string pid = readFile(out + "/victim.pid").value_or("");
  ASSERT_FALSE(pid.empty());
  EXPECT_EQ(::kill(std::stoi(pid), SIGKILL), 0);
  batch.join();
  EXPECT_EQ(run.exitCode, 0) << run.output;
  // The killed attempt, retried; the stages in order.
  EXPECT_NE(run.output.find("task wordcount.map.2.0 TASK_"), std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("retrying"), std::string::npos) << run.output;
  EXPECT_LT(run.output.find("Stage map: finished"), run.output.find("Stage reduce: 1 tasks"))
      << run.output;
  EXPECT_NE(run.output.find("Job wordcount finished"), std::string::npos) << run.output;

  std::ostringstream expected;
  for (const auto& [word, count] : reference) expected << word << " " << count << "\n";
  EXPECT_EQ(readFile(out + "/counts").value_or("(none)"), expected.str());
}

// The examples (examples/batch/), as the guide runs them on `agora up`, here with their output
// in a directory of the test's.
TEST_F(BatchTest, TheWordCountAndEtlExamplesRun) {
  std::string words = dir_.path() + "/wordcount";
  auto run = runCommand({AGORA_BINARY, "batch", "run",
                         std::string(AGORA_SOURCE_DIR) + "/examples/batch/wordcount.yaml",
                         "--master=" + cluster_.masterHttp(), "--output=" + words},
                        seconds(120));
  ASSERT_EQ(run.exitCode, 0) << run.output;
  std::istringstream counts(readFile(words + "/counts").value_or(""));
  std::string word;
  int count = 0;
  int total = 0;
  int distinct = 0;
  while (counts >> word >> count) {
    total += count;
    ++distinct;
  }
  EXPECT_EQ(distinct, 8);
  EXPECT_EQ(total, 4 * 20000);

  std::string etl = dir_.path() + "/etl";
  run = runCommand({AGORA_BINARY, "batch", "run",
                    std::string(AGORA_SOURCE_DIR) + "/examples/batch/etl.yaml",
                    "--master=" + cluster_.masterHttp(), "--output=" + etl},
                   seconds(120));
  ASSERT_EQ(run.exitCode, 0) << run.output;
  // South's first transform gave up on purpose and ran again.
  EXPECT_NE(run.output.find("task etl.transform.1.0 TASK_FAILED"), std::string::npos)
      << run.output;
  std::string report = readFile(etl + "/report.csv").value_or("");
  EXPECT_EQ(report.rfind("region,orders,total_dollars\nnorth,", 0), 0u) << report;
  EXPECT_NE(report.find("\nsouth,"), std::string::npos) << report;
  EXPECT_NE(report.find("\nwest,"), std::string::npos) << report;
}


// `agora batch submit` runs a job in the background and keeps its record in the profile. Its
// driver is killed while the second stage runs: `resume` subscribes as the same framework,
// follows the attempts still running, and runs nothing that finished again. `cancel` kills a
// job's tasks, whether its driver runs or not.
TEST_F(BatchTest, ASubmittedJobSurvivesARestartOfItsDriverWithoutRedoingFinishedTasks) {
  std::string out = dir_.path() + "/out";
  ASSERT_TRUE(makeDirectories(out).ok());
  std::map<std::string, std::string> env = {{"AGORA_HOME", dir_.path() + "/home"}};
  // Each task notes each of its runs; the second stage's tasks wait for a word from the test:
  // the end of the pipe `go`, which the test holds open (a Gate).
  std::string job = "name: pipe\noutput: " + out + R"JOB(
stages:
  - name: first
    tasks: 3
    command: echo "first $AGORA_BATCH_INDEX" >> "$AGORA_BATCH_OUTPUT/runs"; echo hello-$AGORA_BATCH_INDEX
  - name: second
    depends_on: [first]
    tasks: 2
    command: >-
      echo "second $AGORA_BATCH_INDEX" >> "$AGORA_BATCH_OUTPUT/runs";
      exec 3< "$AGORA_BATCH_OUTPUT/go";
      echo $$ > "$AGORA_BATCH_OUTPUT/pid-$AGORA_BATCH_INDEX";
      cat <&3 > /dev/null
  - name: last
    depends_on: [second]
    command: echo "last" >> "$AGORA_BATCH_OUTPUT/runs"
)JOB";
  std::string file = dir_.path() + "/pipe.yaml";
  ASSERT_TRUE(writeFileAtomic(file, job).ok());
  auto batch = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {AGORA_BINARY, "batch"});
    return runCommand(args, seconds(90), env);
  };
  std::string master = "--master=" + cluster_.masterHttp();
  Gate go(out + "/go");
  ASSERT_TRUE(go.open());
  auto submitted = batch({"submit", file, master});
  ASSERT_EQ(submitted.exitCode, 0) << submitted.output;
  ASSERT_EQ(submitted.output.rfind("pipe-1\n", 0), 0u) << submitted.output;
  std::string record = dir_.path() + "/home/profiles/default/batch/pipe-1";
  auto state = [&] {
    return nlohmann::json::parse(readFile(record + "/state.json").value_or("{}"), nullptr, false);
  };
  ASSERT_TRUE(waitUntil([&] { return pathExists(out + "/pid-0") && pathExists(out + "/pid-1"); },
                        seconds(60)))
      << batch({"status", "pipe-1"}).output << readFile(record + "/driver.log").value_or("");

  // The driver dies; the job shows stopped, and its tasks run on.
  pid_t driver = state().value("pid", 0);
  ASSERT_GT(driver, 0);
  ASSERT_EQ(::kill(driver, SIGKILL), 0);
  ASSERT_TRUE(waitUntil([&] { return !processAlive(driver); }, seconds(10)));
  auto status = batch({"status"});
  EXPECT_NE(status.output.find("pipe-1   stopped   3/6     second"), std::string::npos)
      << status.output;
  auto resumed = batch({"resume", "pipe-1"});
  ASSERT_EQ(resumed.exitCode, 0) << resumed.output;
  go.release();
  ASSERT_TRUE(waitUntil([&] { return state().value("state", "") == "finished"; }, seconds(60)))
      << batch({"status", "pipe-1"}).output << readFile(record + "/driver.log").value_or("");
  // Every task ran once: none of the first stage again, and the second's were followed.
  std::vector<std::string> runs;
  std::istringstream lines(readFile(out + "/runs").value_or(""));
  for (std::string line; std::getline(lines, line);) runs.push_back(line);
  std::sort(runs.begin(), runs.end());
  EXPECT_EQ(runs, (std::vector<std::string>{"first 0", "first 1", "first 2", "last",
                                            "second 0", "second 1"}));
  std::string log = readFile(record + "/driver.log").value_or("");
  EXPECT_NE(log.find("Resuming"), std::string::npos) << log;
  EXPECT_EQ(log.find("retrying"), std::string::npos) << log;
  status = batch({"status", "pipe-1"});
  EXPECT_NE(status.output.find("State:      finished"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("second   2       2          0         0          finished"),
            std::string::npos)
      << status.output;
  auto logs = batch({"logs", "pipe-1", "--stage=first", master});
  EXPECT_EQ(logs.exitCode, 0) << logs.output;
  EXPECT_NE(logs.output.find("==> first/1 (pipe.first.1.0) <==\nhello-1\n"), std::string::npos)
      << logs.output;

  // Cancelled while its driver runs, and while none does: the tasks are killed either way.
  for (bool withDriver : {true, false}) {
    ASSERT_TRUE(go.open());  // never released: the tasks run until they are killed
    ASSERT_TRUE(removeAll(out + "/pid-0").ok());
    submitted = batch({"submit", file, master});
    ASSERT_EQ(submitted.exitCode, 0) << submitted.output;
    std::string id = submitted.output.substr(0, submitted.output.find('\n'));
    ASSERT_TRUE(waitUntil([&] { return pathExists(out + "/pid-0"); }, seconds(60)));
    pid_t task = std::atoi(readFile(out + "/pid-0").value_or("0").c_str());
    ASSERT_TRUE(task > 0 && processAlive(task));
    if (!withDriver) {
      record = dir_.path() + "/home/profiles/default/batch/" + id;
      pid_t pid = state().value("pid", 0);
      ASSERT_EQ(::kill(pid, SIGKILL), 0);
      ASSERT_TRUE(waitUntil([&] { return !processAlive(pid); }, seconds(10)));
    }
    auto cancelled = batch({"cancel", id});
    EXPECT_EQ(cancelled.exitCode, 0) << cancelled.output;
    EXPECT_NE(cancelled.output.find("cancelled"), std::string::npos) << cancelled.output;
    EXPECT_TRUE(waitUntil([&] { return !processAlive(task); }, seconds(30)))
        << id << (withDriver ? " with" : " without") << " its driver";
    EXPECT_NE(batch({"status"}).output.find(id + "   cancelled"), std::string::npos);
  }
}

}  // namespace
}  // namespace agora::testing
