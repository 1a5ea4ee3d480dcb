// Reaching into pods with the stock kubectl on `agora up`: exec (with and without a terminal,
// stdin, exit codes), attach, port-forward (to a pod, a deployment, a service), and the errors
// for what cannot be reached; and `agora ssh` onto a node. Each goes through the API server to the pod's agent (remote_command.hpp).

#include <unistd.h>

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/net.hpp"
#include "tests/support/kube_cluster.hpp"
#include "tests/support/terminal.hpp"

namespace agora::testing {
namespace {

using json = nlohmann::json;

std::map<std::string, std::string> kubeEnv(KubeCluster& k) {
  return {{"KUBECONFIG", k.kubeconfig()}, {"AGORA_HOME", k.home()}};
}

TEST(KubeExecTest, ExecRunsInTheContainerWithStdinATerminalAndItsExitCode) {
  KubeCluster k(1, "cpus:4;mem:4096");
  REQUIRE_CLUSTER(k);
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "box"}}},
              {"spec",
               {{"containers",
                 {hostContainer("main", "echo main > $AGORA_SANDBOX/mark; exec sleep 600"),  // ok: the pod's pace
                  hostContainer("side", "exec sleep 600")}}}}};  // ok: the pod's pace
  std::string file = k.home() + "/pod.json";
  ASSERT_TRUE(writeFileAtomic(file, pod.dump()).ok());
  auto applied = k.kubectl({"apply", "-f", file});
  ASSERT_EQ(applied.exitCode, 0) << applied.output;
  ASSERT_EQ(k.kubectl({"wait", "--for=condition=Ready", "pod/box", "--timeout=60s"}).exitCode, 0);

  // A command's output, both streams, and its exit code; in the container's own sandbox and
  // PID namespace (a handful of processes, not the host's).
  auto exec = k.kubectl({"exec", "box", "-c", "main", "--", "sh", "-c",
                         "cat mark; echo oops >&2; echo procs=$(ls /proc | grep -c '^[0-9]'); "
                         "exit 7"});
  EXPECT_EQ(exec.exitCode, 7) << exec.output;
  EXPECT_NE(exec.output.find("main\n"), std::string::npos) << exec.output;
  EXPECT_NE(exec.output.find("oops\n"), std::string::npos) << exec.output;
  size_t procs = exec.output.find("procs=");
  ASSERT_NE(procs, std::string::npos) << exec.output;
  EXPECT_LT(std::atoi(exec.output.c_str() + procs + 6), 10) << exec.output;
  EXPECT_NE(exec.output.find("command terminated with exit code 7"), std::string::npos);

  // stdin, to its end.
  auto piped = runCommand({"/bin/sh", "-c",
                           "printf 'one\\ntwo\\n' | kubectl exec -i box -c side -- "
                           "sh -c 'wc -l; echo after'"},
                          seconds(60), kubeEnv(k));
  EXPECT_EQ(piped.exitCode, 0) << piped.output;
  EXPECT_NE(piped.output.find("2\nafter\n"), std::string::npos) << piped.output;

  // A terminal the size of the client's, a shell with job control, and its exit code.
  auto terminal = runInTerminal(
      {"/usr/bin/env", "kubectl", "exec", "-it", "box", "-c", "main", "--", "/bin/sh"},
      kubeEnv(k), {{"# ", "stty size; tty; exit 4\n"}}, 33, 111);
  EXPECT_EQ(terminal.exitCode, 4) << terminal.output;
  EXPECT_NE(terminal.output.find("33 111"), std::string::npos) << terminal.output;
  EXPECT_NE(terminal.output.find("/dev/pts/"), std::string::npos) << terminal.output;
  EXPECT_EQ(terminal.output.find("Cannot set tty process group"), std::string::npos)
      << terminal.output;

  // What cannot be reached says why.
  auto missing = k.kubectl({"exec", "box", "-c", "nope", "--", "true"});
  EXPECT_NE(missing.exitCode, 0);
  EXPECT_NE(missing.output.find("container nope is not valid for pod box"), std::string::npos)
      << missing.output;
  auto noCommand = k.kubectl({"exec", "box", "-c", "main", "--", "no-such-command"});
  EXPECT_EQ(noCommand.exitCode, 127) << noCommand.output;
  EXPECT_NE(noCommand.output.find("no-such-command"), std::string::npos) << noCommand.output;
  auto noPod = k.kubectl({"exec", "ghost", "--", "true"});
  EXPECT_NE(noPod.output.find("pods \"ghost\" not found"), std::string::npos) << noPod.output;
  // An older kubectl speaks SPDY, which is not served: it is told so.
  if (KubeCluster::haveKubectl("1.27")) {
    auto old = k.kubectl({"exec", "box", "-c", "main", "--", "true"}, "1.27");
    EXPECT_NE(old.exitCode, 0);
    EXPECT_NE(old.output.find("served over WebSockets"), std::string::npos) << old.output;
  }
}

TEST(KubeExecTest, AttachFollowsAContainersOutputUntilItEndsAndWritesToItsStdin) {
  KubeCluster k(1, "cpus:4;mem:4096");
  REQUIRE_CLUSTER(k);
  json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", "counter"}}},
      {"spec",
       {{"restartPolicy", "Never"},
        {"containers",
         {hostContainer("main", "while [ ! -e $AGORA_SANDBOX/go ]; do sleep 0.1; done; "  // ok: the pod's pace
                                "i=0; while [ $i -lt 50 ]; do echo tick $i; i=$((i+1)); "
                                "sleep 0.1; done")}}}}};  // ok: the pod's pace
  std::string file = k.home() + "/pod.json";
  ASSERT_TRUE(writeFileAtomic(file, pod.dump()).ok());
  ASSERT_EQ(k.kubectl({"apply", "-f", file}).exitCode, 0);
  ASSERT_EQ(k.kubectl({"wait", "--for=condition=Ready", "pod/counter", "--timeout=60s"}).exitCode,
            0);
  // The container counts for five seconds once told to (exec runs in its sandbox): attach,
  // started first, sees it to its end, and ends with it.
  auto attach = runCommand({"/bin/sh", "-c",
                            "kubectl attach counter & attached=$!; "
                            "kubectl exec counter -- touch go && wait $attached"},
                           seconds(60), kubeEnv(k));
  EXPECT_EQ(attach.exitCode, 0) << attach.output;
  EXPECT_NE(attach.output.find("tick 49\n"), std::string::npos) << attach.output;

  // A container that asked for stdin reads what `kubectl attach -i` sends it.
  json echoer = {{"apiVersion", "v1"},
                 {"kind", "Pod"},
                 {"metadata", {{"name", "echoer"}}},
                 {"spec",
                  {{"restartPolicy", "Never"},
                   {"containers",
                    {hostContainer("main", "while read line; do echo \"got $line\"; "
                                           "[ \"$line\" = quit ] && exit 0; done")}}}}};
  echoer["spec"]["containers"][0]["stdin"] = true;
  ASSERT_TRUE(writeFileAtomic(file, echoer.dump()).ok());
  ASSERT_EQ(k.kubectl({"apply", "-f", file}).exitCode, 0);
  ASSERT_EQ(k.kubectl({"wait", "--for=condition=Ready", "pod/echoer", "--timeout=60s"}).exitCode,
            0);
  auto talk = runCommand({"/bin/sh", "-c", "printf 'hello\\nquit\\n' | kubectl attach -i echoer"},
                         seconds(60), kubeEnv(k));
  EXPECT_EQ(talk.exitCode, 0) << talk.output;
  EXPECT_NE(talk.output.find("got hello\n"), std::string::npos) << talk.output;
  EXPECT_NE(talk.output.find("got quit\n"), std::string::npos) << talk.output;
  // kubectl run -i --rm: a pod whose stdin ends when the first attach does (stdinOnce), so
  // the shell reads its commands, ends, and the pod is deleted.
  auto run = runCommand({"/bin/sh", "-c",
                         "printf 'echo hi-from-run\\necho $((6*7))\\n' | kubectl run -i --rm "
                         "--restart=Never once --image=agora/host --command -- sh"},
                        seconds(90), kubeEnv(k));
  EXPECT_EQ(run.exitCode, 0) << run.output << k.logTails();
  EXPECT_NE(run.output.find("hi-from-run\n42\n"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("pod \"once\" deleted"), std::string::npos) << run.output;
}

// Starts `kubectl port-forward TARGET LOCAL:REMOTE` and waits until it listens; its pid.
pid_t startPortForward(KubeCluster& k, const std::string& target, int local, int remote,
                       const std::string& log) {
  auto pid = spawnChild({"/usr/bin/env", "kubectl", "port-forward", target,
                         std::to_string(local) + ":" + std::to_string(remote)},
                        log, kubeEnv(k));
  if (!pid) return -1;
  waitUntil([&] { return readFile(log).value_or("").find("Forwarding from") != std::string::npos; },
            seconds(30));
  return *pid;
}

TEST(KubeExecTest, PortForwardReachesAPodThroughItsDeploymentAndItsService) {
  KubeCluster k(1, "cpus:4;mem:4096");
  REQUIRE_CLUSTER(k);
  int port = freeLoopbackPort();
  std::string serve = "cd $(mktemp -d) && seq 1 300000 > big && exec busybox httpd -f -p " +
                      std::to_string(port);
  json deployment = {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", {{"name", "web"}}},
      {"spec",
       {{"replicas", 1},
        {"selector", {{"matchLabels", {{"app", "web"}}}}},
        {"template",
         {{"metadata", {{"labels", {{"app", "web"}}}}},
          {"spec", {{"containers", {hostContainer("httpd", serve)}}}}}}}}};
  json service = {{"apiVersion", "v1"},
                  {"kind", "Service"},
                  {"metadata", {{"name", "web"}}},
                  {"spec",
                   {{"selector", {{"app", "web"}}},
                    {"ports", {{{"port", 80}, {"targetPort", port}}}}}}};
  std::string file = k.home() + "/web.json";
  ASSERT_TRUE(writeFileAtomic(file, json{{"apiVersion", "v1"},
                                          {"kind", "List"},
                                          {"items", {deployment, service}}}
                                        .dump())
                  .ok());
  ASSERT_EQ(k.kubectl({"apply", "-f", file}).exitCode, 0);
  ASSERT_EQ(k.kubectl({"rollout", "status", "deployment/web", "--timeout=60s"}).exitCode, 0);
  std::string big;
  for (int i = 1; i <= 300000; ++i) big += std::to_string(i) + "\n";

  // By the deployment and by the service (its port 80 is the pod's `port`): a 2 MB answer
  // comes through whole, twice on one forward.
  for (std::string target : {"deployment/web", "service/web"}) {
    int local = freeLoopbackPort();
    std::string log = k.home() + "/forward-" + std::to_string(local) + ".log";
    pid_t forward = startPortForward(k, target, local, target == "service/web" ? 80 : port, log);
    ASSERT_GT(forward, 0);
    for (int round = 0; round < 2; ++round) {
      std::string body;
      ASSERT_TRUE(waitUntil(
          [&] {
            auto got = httpGet("127.0.0.1:" + std::to_string(local), "/big", seconds(20));
            body = got && got->status == 200 ? got->body : "";
            return !body.empty();
          },
          seconds(30)))
          << target << ": " << readFile(log).value_or("");
      EXPECT_EQ(body.size(), big.size()) << target;
      EXPECT_TRUE(body == big) << target;
    }
    stopChild(forward);
  }

  // A port nothing listens on: the connection is dropped, and kubectl says why.
  int local = freeLoopbackPort();
  std::string log = k.home() + "/forward-refused.log";
  pid_t forward = startPortForward(k, "deployment/web", local, 1, log);
  ASSERT_GT(forward, 0);
  EXPECT_FALSE(httpGet("127.0.0.1:" + std::to_string(local), "/", seconds(10)).ok());
  EXPECT_TRUE(waitUntil(
      [&] {
        return readFile(log).value_or("").find("failed to connect to localhost:1 ") !=
               std::string::npos;
      },
      seconds(10)))
      << readFile(log).value_or("");
  stopChild(forward);
}

TEST(KubeExecTest, SshGivesAShellOrRunsACommandOnANodesHost) {
  KubeCluster k(2, "cpus:2;mem:2048");
  REQUIRE_CLUSTER(k);
  auto command = k.agora({"ssh", "--", "sh", "-c", "echo $((6*7)); id -un; exit 9"});
  EXPECT_EQ(command.exitCode, 9) << command.output;
  EXPECT_NE(command.output.find("42\nroot\n"), std::string::npos) << command.output;
  // A node by name; a shell on a terminal.
  auto agents = k.agora({"agents"});
  size_t at = agents.output.find("-agent-2");
  ASSERT_NE(at, std::string::npos) << agents.output;
  size_t start = agents.output.rfind(' ', at) + 1;
  std::string node = agents.output.substr(start, agents.output.find(' ', at) - start);
  std::map<std::string, std::string> env = kubeEnv(k);
  auto shell = runInTerminal({AGORA_BINARY, "ssh", node}, env,
                             {{"# ", "echo sum=$((40+2)); stty size; exit 3\n"}}, 20, 70);
  EXPECT_EQ(shell.exitCode, 3) << shell.output;
  EXPECT_NE(shell.output.find("sum=42"), std::string::npos) << shell.output;
  EXPECT_NE(shell.output.find("20 70"), std::string::npos) << shell.output;
  // An agent started without --allow_host_exec (agora up gives it to its agents) refuses.
  ProcessClusterOptions plain;
  plain.agents = 1;
  ProcessCluster cluster(plain);
  ASSERT_TRUE(cluster.start().ok());
  auto refused = runCommand({AGORA_BINARY, "ssh", "--master=" + cluster.masterHttp(), "--",
                             "true"},
                            seconds(30));
  EXPECT_EQ(refused.exitCode, 1) << refused.output;
  EXPECT_NE(refused.output.find("started without --allow_host_exec"), std::string::npos)
      << refused.output;
  auto unknown = k.agora({"ssh", "no-such-node", "--", "true"});
  EXPECT_EQ(unknown.exitCode, 1);
  EXPECT_NE(unknown.output.find("no node no-such-node"), std::string::npos) << unknown.output;
}

}  // namespace
}  // namespace agora::testing
