// The `agora` command line: clear errors for bad flags, and a whole local cluster through
// `agora up`, `agora run`, the operator verbs and `agora stop`.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "common/process.hpp"
#include "tests/support/kube_cluster.hpp"
#include "tests/support/process_cluster.hpp"

namespace agora::testing {
namespace {

CommandResult agora(const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env = {},
                    Duration timeout = seconds(60)) {
  std::vector<std::string> argv = {AGORA_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return runCommand(argv, timeout, env);
}

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

TEST(CliTest, BadFlagsAndInputGetClearErrors) {
  TempDir dir;
  auto r = agora({"agent", "--master=127.0.0.1:1", "--work_dir=" + dir.path(),
                  "--resources=cpus:abc"});
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_TRUE(contains(r.output, "invalid --resources")) << r.output;

  r = agora({"agent", "--master=127.0.0.1:1"});
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_TRUE(contains(r.output, "--work_dir is required")) << r.output;

  r = agora({"agent", "--work_dir=" + dir.path()});
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_TRUE(contains(r.output, "--master")) << r.output;

  r = agora({"agent", "--master=nonsense", "--work_dir=" + dir.path()});
  EXPECT_EQ(r.exitCode, 2);

  r = agora({"tasks", "--master=127.0.0.1:1", "--zk=zk://127.0.0.1:1/agora"});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_TRUE(contains(r.output, "not both")) << r.output;

  r = agora({"agents", "--zk=127.0.0.1:2181/agora"});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_TRUE(contains(r.output, "--zk must look like zk://")) << r.output;

  r = agora({"agent", "--master=127.0.0.1:1", "--work_dir=/proc/agora-cannot-be-here"});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_TRUE(contains(r.output, "cannot create directory")) << r.output;

  // Two agents on one work directory: the second is refused.
  auto first = spawnChild({AGORA_BINARY, "agent", "--master=127.0.0.1:1", "--port=0",
                           "--work_dir=" + dir.path() + "/shared",
                           "--info_file=" + dir.path() + "/first.json"},
                          dir.path() + "/first.log");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(waitUntil([&] { return pathExists(dir.path() + "/first.json"); }, seconds(10)));
  r = agora({"agent", "--master=127.0.0.1:1", "--port=0", "--work_dir=" + dir.path() + "/shared"});
  stopChild(*first);
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_TRUE(contains(r.output, "another agent is using the work directory")) << r.output;

  r = agora({"master", "--port=99999"});
  EXPECT_EQ(r.exitCode, 2);
  r = agora({"master", "--no-such-flag"});
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_TRUE(contains(r.output, "unknown flag '--no_such_flag'")) << r.output;
  r = agora({"master", "--agent_ping_timeout=soon"});
  EXPECT_EQ(r.exitCode, 2);
  r = agora({"nonsense"});
  EXPECT_EQ(r.exitCode, 2);
  r = agora({"run", "--command=true", "--master=127.0.0.1:1", "--resources=mem:-1"});
  EXPECT_EQ(r.exitCode, 2);
  r = agora({"tasks", "--master=127.0.0.1:1"});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_TRUE(contains(r.output, "cannot connect")) << r.output;

  r = agora({"--help"});
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_TRUE(contains(r.output, "agora up")) << r.output;
  for (const char* verb : {"master", "agent", "up", "run", "agents", "tasks", "stop"}) {
    r = agora({verb, "--help"});
    EXPECT_EQ(r.exitCode, 0) << verb;
    EXPECT_TRUE(contains(r.output, "Usage: agora " + std::string(verb))) << r.output;
  }
}

// Stops the profile whatever happens to the test.
struct StopAtExit {
  std::map<std::string, std::string> env;
  ~StopAtExit() { agora({"stop", "--all"}, env); }
};

TEST(CliTest, LocalClusterUpRunAndStop) {
  TempDir home;
  std::map<std::string, std::string> env = kubeNetworkEnv();
  env["AGORA_HOME"] = home.path();
  env["KUBECONFIG"] = home.path() + "/kubeconfig";
  StopAtExit guard{env};

  auto r = agora({"up", "--port=0", "--agents=2", "--agent_resources=cpus:2;mem:2048;disk:512"},
                 env);
  ASSERT_EQ(r.exitCode, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "Agora is up")) << r.output;

  r = agora({"up", "--port=0"}, env);  // already up: says so, starts nothing
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_TRUE(contains(r.output, "is up")) << r.output;
  EXPECT_FALSE(contains(r.output, "Restarted")) << r.output;

  r = agora({"status"}, env);
  EXPECT_EQ(r.exitCode, 0) << r.output;

  r = agora({"run", "--command=echo hello from $AGORA_TASK_ID", "--count=3"}, env);
  EXPECT_EQ(r.exitCode, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "FINISHED")) << r.output;
  EXPECT_TRUE(contains(r.output, "| hello from run-")) << r.output;

  r = agora({"run", "--command=echo partial; exit 3"}, env);
  EXPECT_EQ(r.exitCode, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "FAILED")) << r.output;
  EXPECT_TRUE(contains(r.output, "status 3")) << r.output;
  EXPECT_TRUE(contains(r.output, "partial")) << r.output;

  const char* slowly = "--command=for i in 1 2 3; do echo line $i; sleep 0.2; done";  // ok: task
  r = agora({"run", slowly, "--follow"}, env);
  EXPECT_EQ(r.exitCode, 0) << r.output;
  // The lines come in order, and the task's end after its last line.
  size_t one = r.output.find("line 1\n");
  size_t two = r.output.find("line 2\n");
  size_t three = r.output.find("line 3\n");
  size_t finished = r.output.find("FINISHED");
  EXPECT_TRUE(one != std::string::npos && one < two && two < three &&
              three != std::string::npos && three < finished && finished != std::string::npos)
      << r.output;

  r = agora({"agents"}, env);
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_TRUE(contains(r.output, "HOSTNAME")) << r.output;
  EXPECT_TRUE(contains(r.output, "-agent-1")) << r.output;
  EXPECT_TRUE(contains(r.output, "-agent-2")) << r.output;

  // An agent that dies is started again by `up`, on its work directory.
  auto profile = nlohmann::json::parse(*readFile(home.path() + "/profiles/default/profile.json"));
  pid_t firstAgent = 0;
  for (const auto& d : profile["daemons"]) {
    if (d["role"] == "agent" && firstAgent == 0) {
      firstAgent = d["pid"].get<pid_t>();
    }
  }
  ASSERT_GT(firstAgent, 1);
  ASSERT_EQ(::kill(firstAgent, SIGKILL), 0);
  ASSERT_TRUE(waitUntil([&] { return !processAlive(firstAgent); }, seconds(10)));
  r = agora({"up", "--port=0"}, env);
  EXPECT_EQ(r.exitCode, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "Restarted agent 1")) << r.output;
  r = agora({"status"}, env);
  EXPECT_EQ(r.exitCode, 0) << r.output;
  EXPECT_FALSE(contains(r.output, "stopped")) << r.output;

  r = agora({"tasks", "--all"}, env);
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_TRUE(contains(r.output, "TASK_FINISHED")) << r.output;
  EXPECT_TRUE(contains(r.output, "TASK_FAILED")) << r.output;

  r = agora({"frameworks", "--all"}, env);
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_TRUE(contains(r.output, "agora-run")) << r.output;

  r = agora({"profile", "list"}, env);
  EXPECT_TRUE(contains(r.output, "default   running")) << r.output;

  r = agora({"stop"}, env);
  EXPECT_EQ(r.exitCode, 0) << r.output;
  r = agora({"status"}, env);
  EXPECT_EQ(r.exitCode, 1 | 2 | 4) << r.output;  // master, agents and kube API down
  EXPECT_TRUE(contains(r.output, "stopped")) << r.output;

  r = agora({"delete"}, env);
  EXPECT_EQ(r.exitCode, 0) << r.output;
  EXPECT_FALSE(pathExists(home.path() + "/profiles/default"));
}

// pids of a profile's daemons of `role`.
std::vector<pid_t> daemonPids(const std::string& home, const std::string& profile,
                              const std::string& role) {
  std::vector<pid_t> pids;
  auto j = nlohmann::json::parse(
      readFile(home + "/profiles/" + profile + "/profile.json").value_or("{}"), nullptr, false);
  for (const auto& d : j.value("daemons", nlohmann::json::array())) {
    if (d.value("role", "") == role) pids.push_back(d.value("pid", 0));
  }
  return pids;
}

TEST(CliTest, TwoProfilesAtOnceAndStatusSaysWhichPartIsDown) {
  TempDir home;
  std::map<std::string, std::string> env = kubeNetworkEnv();
  env["AGORA_HOME"] = home.path();
  env["KUBECONFIG"] = home.path() + "/kubeconfig";
  StopAtExit guard{env};
  auto r = agora({"start", "--profile=a", "--port=0", "--agents=1"}, env);
  ASSERT_EQ(r.exitCode, 0) << r.output;
  r = agora({"start", "--profile=b", "--port=0", "--agents=1", "--kube=false"}, env);
  ASSERT_EQ(r.exitCode, 0) << r.output;
  std::map<std::string, std::string> activeB = env;
  activeB["AGORA_PROFILE"] = "b";
  r = agora({"profile", "list"}, activeB);
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_TRUE(contains(r.output, "PROFILE   STATUS    AGENTS")) << r.output;
  EXPECT_TRUE(contains(r.output, "\na         running   1")) << r.output;
  EXPECT_TRUE(contains(r.output, "\nb         running   1")) << r.output;
  EXPECT_TRUE(contains(r.output, "*\n")) << r.output;
  r = agora({"status", "--profile=a"}, env);
  EXPECT_EQ(r.exitCode, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "kube      running")) << r.output;
  EXPECT_TRUE(contains(r.output, "kubeconfig " + home.path() + "/kubeconfig")) << r.output;

  // An agent of b down: 2. The kube API of a down: 4.
  for (pid_t pid : daemonPids(home.path(), "b", "agent")) ASSERT_EQ(::kill(pid, SIGKILL), 0);
  for (pid_t pid : daemonPids(home.path(), "a", "kube")) ASSERT_EQ(::kill(pid, SIGKILL), 0);
  EXPECT_TRUE(waitUntil([&] { return agora({"status", "--profile=b"}, env).exitCode == 2; },
                        seconds(10)));
  EXPECT_TRUE(waitUntil([&] { return agora({"status", "--profile=a"}, env).exitCode == 4; },
                        seconds(10)));
  r = agora({"profile", "list"}, env);
  EXPECT_TRUE(contains(r.output, "\nb         degraded")) << r.output;

  // Both stopped at once: every part down.
  r = agora({"stop", "--all"}, env);
  EXPECT_EQ(r.exitCode, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "Stopped profile 'a'") && contains(r.output, "Stopped profile 'b'"))
      << r.output;
  EXPECT_EQ(agora({"status", "--profile=a"}, env).exitCode, 1 | 2 | 4);
  EXPECT_EQ(agora({"status", "--profile=b"}, env).exitCode, 1 | 2);
  EXPECT_EQ(agora({"status", "--profile=none"}, env).exitCode, 64);
  EXPECT_EQ(agora({"delete", "--purge"}, env).exitCode, 2);  // --purge needs --all
  r = agora({"delete", "--all", "--purge"}, env);
  EXPECT_EQ(r.exitCode, 0) << r.output;
  EXPECT_FALSE(pathExists(home.path() + "/profiles"));
}

TEST(CliTest, RolesWeightsAndQuota) {
  TempDir home;
  std::map<std::string, std::string> env = kubeNetworkEnv();
  env["AGORA_HOME"] = home.path();
  env["KUBECONFIG"] = home.path() + "/kubeconfig";
  StopAtExit guard{env};
  auto r = agora({"up", "--port=0", "--agents=2", "--agent_resources=cpus:2;mem:2048;cpus(eng):1"},
                 env);
  ASSERT_EQ(r.exitCode, 0) << r.output;

  r = agora({"weights", "set", "eng=2", "ops=0.5"}, env);
  EXPECT_EQ(r.exitCode, 0) << r.output;
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"weights", "set", "eng=-1"},
        {"weights", "set", "eng"},
        {"weights", "set", "bad role=2"},
        {"quota", "set", "eng", "--guarantee=cpus:4", "--limit=cpus:2"},
        {"quota", "set", "eng", "--guarantee=bogus:1"},
        {"quota", "set", "eng", "--guarantee=cpus:-1"},
        {"quota", "remove", "nobody"},
        {"quota", "frobnicate", "eng"}}) {
    r = agora(bad, env);
    EXPECT_NE(r.exitCode, 0) << bad[1] << " " << r.output;
    EXPECT_TRUE(contains(r.output, "agora " + bad[0] + ": ")) << r.output;
  }
  r = agora({"quota", "set", "eng", "--guarantee=cpus:1;mem:256", "--limit=cpus:3"}, env);
  EXPECT_EQ(r.exitCode, 0) << r.output;
  r = agora({"quota", "set", "huge", "--guarantee=cpus:1000"}, env);
  EXPECT_EQ(r.exitCode, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "warning: the guarantee exceeds the cluster's total")) << r.output;
  r = agora({"quota", "remove", "huge"}, env);
  EXPECT_EQ(r.exitCode, 0) << r.output;

  r = agora({"run", "--role=eng", "--command=true", "--count=2"}, env);
  EXPECT_EQ(r.exitCode, 0) << r.output;
  r = agora({"roles", "--why"}, env);
  EXPECT_EQ(r.exitCode, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "LAST ALLOCATION")) << r.output;

  // An operator's reservation of free resources, and back.
  r = agora({"agents"}, env);
  std::string agentId = r.output.substr(r.output.find('\n') + 1);
  agentId = agentId.substr(0, agentId.find(' '));
  r = agora({"reserve", agentId, "cpus(ops):1;mem(ops):128"}, env);
  EXPECT_EQ(r.exitCode, 0) << r.output;
  r = agora({"roles"}, env);
  EXPECT_TRUE(contains(r.output, "cpus:1;mem:128")) << r.output;
  r = agora({"reserve", agentId, "cpus(ops):100"}, env);
  EXPECT_EQ(r.exitCode, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "does not have cpus:100 free")) << r.output;
  r = agora({"reserve", agentId, "cpus:1"}, env);
  EXPECT_TRUE(contains(r.output, "name a role")) << r.output;
  r = agora({"unreserve", agentId, "cpus(ops):1;mem(ops):128"}, env);
  EXPECT_EQ(r.exitCode, 0) << r.output;

  // The settings are in the registry: a restarted master has them.
  ASSERT_EQ(agora({"stop"}, env).exitCode, 0);
  r = agora({"up", "--port=0", "--agents=1"}, env);
  ASSERT_EQ(r.exitCode, 0) << r.output;
  r = agora({"roles"}, env);
  EXPECT_EQ(r.exitCode, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "eng    2 ")) << r.output;
  EXPECT_TRUE(contains(r.output, "cpus:1;mem:256   cpus:3")) << r.output;
  EXPECT_TRUE(contains(r.output, "ops    0.5")) << r.output;
  EXPECT_FALSE(contains(r.output, "huge")) << r.output;
}

TEST(CliTest, ASupervisedCommandGoesWithItsSupervisor) {
  TempDir dir;
  SpawnOptions spawn;
  spawn.argv = {AGORA_BINARY, "supervise", "--", AGORA_BINARY, "master", "--ip=127.0.0.1",
                "--port=0", "--work_dir=" + dir.path()};
  spawn.env = currentEnvironment();
  spawn.stdoutPath = dir.path() + "/out";
  spawn.stderrPath = dir.path() + "/out";
  auto supervisor = spawnProcess(spawn);
  ASSERT_TRUE(supervisor.ok()) << supervisor.error();
  pid_t master = 0;
  auto childOf = [](pid_t parent) {
    for (const ProcessInfo& p : listProcesses()) {
      if (p.parent == parent && p.state != 'Z') return p.pid;
    }
    return pid_t{0};
  };
  EXPECT_TRUE(waitUntil([&] { return (master = childOf(*supervisor)) > 0; }, seconds(10)));
  // The supervisor dies without a word: the master must not run on as an orphan.
  ::kill(*supervisor, SIGKILL);
  ::waitpid(*supervisor, nullptr, 0);
  ASSERT_GT(master, 0);
  auto running = [master] {
    for (const ProcessInfo& p : listProcesses()) {
      if (p.pid == master) return p.state != 'Z';
    }
    return false;
  };
  EXPECT_TRUE(waitUntil([&] { return !running(); }, seconds(10)))
      << readFile(dir.path() + "/out").value_or("");
  if (running()) ::kill(master, SIGKILL);
}

}  // namespace
}  // namespace agora::testing
