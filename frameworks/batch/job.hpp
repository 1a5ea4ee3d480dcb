#pragma once

// A batch job (`agora batch`): a pipeline of stages, each a set of parallel tasks, given as a
// YAML (or JSON) file.
//
//   name: wordcount
//   role: analytics               # the framework's role (default "*")
//   user: nobody                  # tasks run as this user (default: the framework's)
//   output: /srv/wordcount        # $AGORA_BATCH_OUTPUT in every task (default: none)
//   deadline: 10m                 # the job fails if it runs longer (default: none)
//   stages:
//     - name: map
//       inputs:                   # one task per input ($AGORA_BATCH_INPUT), or `tasks: N`
//         - path: /srv/text/part-0
//           where: {hostname: node-1}   # data locality: agents whose attributes (or
//                                       # hostname) match are preferred
//       command: wc -w < "$AGORA_BATCH_INPUT" > "$AGORA_BATCH_OUTPUT/map-$AGORA_BATCH_INDEX"
//       resources: cpus:0.1;mem:32
//       retries: 3                # attempts after the first failure (default 2)
//     - name: reduce
//       depends_on: [map]         # starts once every task of these has finished
//       command: cat "$AGORA_BATCH_OUTPUT"/map-* | awk '{s += $1} END {print s}' > ...
//
// Each task also sees AGORA_BATCH_JOB, AGORA_BATCH_STAGE and AGORA_BATCH_INDEX (0-based).

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "common/time.hpp"

namespace agora::batch {

struct Input {
  std::string path;
  std::map<std::string, std::string> where;  // attribute (or "hostname") -> value
};

struct Stage {
  std::string name;
  std::string command;
  std::string image;                  // "": the agent's host filesystem
  std::string resources = "cpus:0.1;mem:32";
  int tasks = 1;                      // how many (inputs.size() when inputs are given)
  std::vector<Input> inputs;
  std::vector<std::string> dependsOn;
  int retries = 2;
};

struct Job {
  std::string name;
  std::string role = "*";
  std::string user;
  std::string output;
  std::optional<Duration> deadline;
  std::vector<Stage> stages;  // in an order where each comes after what it depends on

  const Stage* stage(const std::string& name) const;
};

// Reads and checks a job: names (DNS labels), at least one stage, resources that parse,
// dependencies that exist and form no cycle; stages come back ordered by dependency.
Result<Job> parseJob(const std::string& text);
Result<Job> loadJob(const std::string& path);

}  // namespace agora::batch
