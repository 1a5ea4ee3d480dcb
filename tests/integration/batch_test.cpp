// The batch framework on a real cluster: `agora batch run` with a word count whose output is
// checked against a count made here, while one of its tasks is killed midway.

#include <signal.h>

#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/fs.hpp"
#include "tests/support/process_cluster.hpp"
#include "tests/support/temp_dir.hpp"

namespace agora::testing {
namespace {

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

}  // namespace
}  // namespace agora::testing
