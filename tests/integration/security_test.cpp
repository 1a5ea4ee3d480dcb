// Authentication and authorisation on the protocol port, end to end: a real master with CURVE
// credentials and ACLs, real agents, frameworks on the SDK.

#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "agora/scheduler.hpp"
#include "common/certs.hpp"
#include "common/curve.hpp"
#include "common/envelope.hpp"
#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/http_tokens.hpp"
#include "common/net.hpp"
#include "common/tls.hpp"
#include "tests/support/process_cluster.hpp"
#include "tests/support/test_scheduler.hpp"

namespace agora::testing {
namespace {

using nlohmann::json;

// Keys for a master and its clients, in a directory of their own: `agent` and `analytics` are
// known principals, `tenant` is known but the ACLs give it nothing, and `intruder` is a key
// pair the master has never heard of.
class Keys {
 public:
  Keys() {
    Credentials master;
    master.keys = generateCurveKeyPair();
    for (const char* principal : {"agent", "analytics", "tenant", "intruder"}) {
      Credentials client;
      client.principal = principal;
      client.keys = generateCurveKeyPair();
      client.serverKey = master.keys.publicKey;
      if (std::string(principal) != "intruder") {
        master.clients[client.keys.publicKey] = principal;
      }
      CHECK(saveCredentials(path(principal), client).ok());
    }
    CHECK(saveCredentials(path("master"), master).ok());
    CHECK(writeFileAtomic(dir_.path() + "/acls.yaml", R"(
register_agents:
  - principals: [agent]
register_frameworks:
  - principals: [analytics]
    roles: [analytics, analytics/*]
run_tasks:
  - principals: [ANY]
    users: [root]
    allow: false
  - principals: [analytics]
    users: [ANY]
view_state:
  - principals: [ANY]
)")
              .ok());
  }

  std::string path(const std::string& name) const { return dir_.path() + "/" + name + ".json"; }
  std::string acls() const { return dir_.path() + "/acls.yaml"; }

 private:
  TempDir dir_;
};

class SecurityTest : public ::testing::Test {
 protected:
  SecurityTest()
      : cluster_(ProcessClusterOptions{
            1, "cpus:4;mem:4096;disk:1024",
            {"--credentials=" + keys_.path("master"), "--acls=" + keys_.acls()},
            {"--credentials=" + keys_.path("agent")}}) {}

  void SetUp() override { ASSERT_TRUE(cluster_.start().ok()) << "see " << cluster_.dir(); }

  // Starts an agent with `flags` that the test stops; returns its log.
  std::string startAgent(const std::string& name, const std::vector<std::string>& flags) {
    std::string dir = cluster_.dir() + "/" + name;
    std::vector<std::string> args = {AGORA_BINARY, "agent", "--master=" + cluster_.masterHttp(),
                                     "--work_dir=" + dir, "--port=0", "--hostname=" + name,
                                     "--resources=cpus:1;mem:512"};
    args.insert(args.end(), flags.begin(), flags.end());
    auto pid = spawnChild(args, dir + ".log", {}, SIGUSR1);
    EXPECT_TRUE(pid.ok()) << pid.error();
    if (pid) {
      extraAgents_.push_back(*pid);
    }
    return dir + ".log";
  }

  void TearDown() override {
    for (pid_t pid : extraAgents_) {
      stopChild(pid, seconds(10), SIGUSR1);
    }
  }

  static bool logSays(const std::string& log, const std::string& text) {
    return waitUntil(
        [&] {
          auto content = readFile(log);
          return content && content->find(text) != std::string::npos;
        },
        seconds(20));
  }

  double metric(const std::string& name) {
    auto response = httpGet(cluster_.masterHttp(), "/metrics", seconds(5));
    if (!response) return -1;
    size_t at = response->body.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stod(response->body.substr(at + name.size() + 2));
  }

  Keys keys_;
  ProcessCluster cluster_;
  std::vector<pid_t> extraAgents_;
};

TEST_F(SecurityTest, AnAgentWithoutValidKeysOrRightsCannotJoin) {
  std::string noKeys = startAgent("no-keys", {});
  std::string intruder = startAgent("intruder", {"--credentials=" + keys_.path("intruder")});
  std::string tenant = startAgent("tenant", {"--credentials=" + keys_.path("tenant")});

  // No keys: the handshake fails, and the agent says what it lacks.
  EXPECT_TRUE(logSays(noKeys, "does the master require CURVE credentials?")) << noKeys;
  // A key the master does not know: the master's ZAP handler refuses it.
  EXPECT_TRUE(logSays(intruder, "refused this peer's CURVE credentials")) << intruder;
  EXPECT_TRUE(logSays(cluster_.masterLog(), "unknown client key")) << cluster_.masterLog();
  // A known key whose principal may not register agents: refused by the ACLs, clearly.
  EXPECT_TRUE(logSays(tenant, "the ACLs do not let principal 'tenant' register agents")) << tenant;

  auto state = cluster_.masterState();
  ASSERT_TRUE(state.ok()) << state.error();
  ASSERT_EQ((*state)["agents"].size(), 1u) << state->dump();
  EXPECT_EQ((*state)["agents"][0]["hostname"], "agent-0");
  // The master counts a failed handshake when ZeroMQ reports it, which may be after the logs.
  EXPECT_TRUE(waitUntil(
      [&] { return metric("agora_master_connections_unauthenticated_total") >= 2; }, seconds(10)))
      << metric("agora_master_connections_unauthenticated_total");
  EXPECT_GE(metric("agora_master_unauthorized_total{action=\"register_agents\"}"), 1);
}

TEST_F(SecurityTest, AFrameworkWithoutValidKeysCannotSubscribe) {
  TestScheduler scheduler;
  FrameworkInfo info = testFramework("intruder");
  info.add_roles("analytics");
  SchedulerDriverOptions options;
  options.credentials = keys_.path("intruder");
  SchedulerDriver driver(&scheduler, info, cluster_.masterHttp(), options);
  driver.start();
  EXPECT_FALSE(scheduler.waitForSubscription(1, seconds(3)));
  driver.abort();
  driver.join();

  // Keys that are not a client's are refused before anything is sent.
  TestScheduler wrong;
  options.credentials = keys_.path("master");
  SchedulerDriver refused(&wrong, info, cluster_.masterHttp(), options);
  EXPECT_EQ(refused.start(), DriverStatus::kAborted);
  std::vector<std::string> errors = wrong.waitForErrors(seconds(1));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("are a master's"), std::string::npos) << errors[0];
}

TEST_F(SecurityTest, AFrameworkSubscribesOnlyInItsRolesAndRunsOnlyAsItsUsers) {
  SchedulerDriverOptions options;
  options.credentials = keys_.path("analytics");

  // A role the ACLs do not give it.
  {
    TestScheduler scheduler;
    FrameworkInfo info = testFramework("wrong-role");
    info.add_roles("services");
    SchedulerDriver driver(&scheduler, info, cluster_.masterHttp(), options);
    driver.start();
    std::vector<std::string> errors = scheduler.waitForErrors();
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].find("the ACLs do not let principal 'analytics' register frameworks in "
                             "role 'services'"),
              std::string::npos)
        << errors[0];
    driver.join();
  }
  // A principal it cannot prove.
  {
    TestScheduler scheduler;
    FrameworkInfo info = testFramework("impostor");
    info.add_roles("analytics");
    info.set_principal("admin");
    SchedulerDriver driver(&scheduler, info, cluster_.masterHttp(), options);
    driver.start();
    std::vector<std::string> errors = scheduler.waitForErrors();
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].find("says it is principal 'admin' but its credentials are principal "
                             "'analytics'"),
              std::string::npos)
        << errors[0];
    driver.join();
  }
  // Its own role, a sub-role: subscribed as its key's principal; root is refused, another
  // user runs.
  TestScheduler scheduler;
  FrameworkInfo info = testFramework("etl");
  info.add_roles("analytics/etl");
  SchedulerDriver driver(&scheduler, info, cluster_.masterHttp(), options);
  TaskInfo asRoot = TestScheduler::commandTask("as-root", "true");
  TaskInfo asNobody = TestScheduler::commandTask("as-nobody", "id -un");
  asNobody.mutable_command()->set_user("nobody");
  scheduler.launch(asRoot);
  scheduler.launch(asNobody);
  driver.start();
  ASSERT_TRUE(scheduler.waitForSubscription());
  TaskStatus refused = scheduler.waitForEnd("as-root");
  EXPECT_EQ(refused.state(), TASK_ERROR);
  EXPECT_NE(refused.message().find("the ACLs do not let principal 'analytics' run tasks as user "
                                   "'root'"),
            std::string::npos)
      << refused.message();
  EXPECT_EQ(scheduler.waitForEnd("as-nobody").state(), TASK_FINISHED);

  auto state = cluster_.masterState();
  ASSERT_TRUE(state.ok());
  ASSERT_EQ((*state)["frameworks"].size(), 1u);
  EXPECT_EQ((*state)["frameworks"][0]["principal"], "analytics");
  EXPECT_GE(metric("agora_master_unauthorized_total{action=\"run_tasks\"}"), 1);
  EXPECT_GE(metric("agora_master_unauthorized_total{action=\"register_frameworks\"}"), 2);
  driver.stop();
  driver.join();
}

// The executors' socket: with the agent's --credentials each executor holds a CURVE key pair of
// its own, and a process that takes its routing id without that key speaks for no one.
TEST_F(SecurityTest, OnlyAnExecutorsOwnKeySpeaksForIt) {
  SchedulerDriverOptions options;
  options.credentials = keys_.path("analytics");
  TestScheduler scheduler;
  FrameworkInfo info = testFramework("sleeper");
  info.add_roles("analytics");
  SchedulerDriver driver(&scheduler, info, cluster_.masterHttp(), options);
  // Each runs only if its environment does not show it its executor's secret key.
  for (const char* id : {"sleeper", "other"}) {
    TaskInfo task = TestScheduler::commandTask(
        id, "! env | grep -q AGORA_EXECUTOR_CURVE_SECRET_KEY && exec tail -f /dev/null");
    task.mutable_command()->set_user("nobody");
    scheduler.launch(task);
  }
  driver.start();
  // Their executors connected with their keys: the tasks run.
  ASSERT_TRUE(scheduler.waitForState("sleeper", TASK_RUNNING));
  ASSERT_TRUE(scheduler.waitForState("other", TASK_RUNNING));

  auto agentInfo = readFile(cluster_.agentWorkDir(0) + ".json");
  ASSERT_TRUE(agentInfo.ok()) << agentInfo.error();
  std::string endpoint = json::parse(*agentInfo).value("executor_endpoint", "");
  ASSERT_EQ(endpoint.rfind("ipc://", 0), 0u) << *agentInfo;
  auto agentState = httpGet(json::parse(*agentInfo).value("http", ""), "/state");
  ASSERT_TRUE(agentState.ok()) << agentState.error();
  std::map<std::string, std::string> containers;  // executor id -> container id
  json agentJson = json::parse(agentState->body);
  for (const json& f : agentJson["frameworks"]) {
    for (const json& e : f["executors"]) containers[e.value("id", "")] = e.value("container_id", "");
  }
  ASSERT_EQ(containers.size(), 2u) << agentState->body;
  // The other executor's own key pair, as a hostile executor knows its own: from its initial
  // environment (root may read it; its tasks, as nobody, may not).
  CurveKeyPair otherKeys;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::string environ = readFile(entry.path().string() + "/environ").value_or("");
    if (environ.find("AGORA_CONTAINER_ID=" + containers["other"] + '\0') == std::string::npos) {
      continue;
    }
    size_t at = environ.find("AGORA_EXECUTOR_CURVE_SECRET_KEY=");
    if (at == std::string::npos) continue;
    at += std::strlen("AGORA_EXECUTOR_CURVE_SECRET_KEY=");
    auto keys = curveKeyPairOf(environ.substr(at, environ.find('\0', at) - at));
    if (keys) otherKeys = *keys;
  }
  ASSERT_FALSE(otherKeys.secretKey.empty()) << "no process of container " << containers["other"];

  // Posers, each taking the sleeper's routing id (the socket hands a routing id over to its
  // newest connection) and saying its task finished: one without keys, one with a key pair of
  // its own, and the other executor with its real keys.
  Envelope lie;
  ExecutorCall* call = lie.mutable_executor_call();
  call->set_framework_id(scheduler.frameworkId());
  call->set_executor_id("sleeper");
  TaskStatus* status = call->mutable_update()->mutable_status();
  status->set_task_id("sleeper");
  status->set_state(TASK_FINISHED);
  status->set_uuid("0123456789abcdef");
  std::string bytes = encodeEnvelope(lie);
  auto agentKey = readFile(cluster_.agentWorkDir(0) + "/executors.key");
  ASSERT_TRUE(agentKey.ok()) << agentKey.error();
  std::string agentPublic = curveKeyPairOf(agentKey->substr(0, 40))->publicKey;
  zmq::context_t context;
  std::vector<std::unique_ptr<zmq::socket_t>> posers;
  for (const CurveKeyPair& keys : {CurveKeyPair{}, generateCurveKeyPair(), otherKeys}) {
    auto poser = std::make_unique<zmq::socket_t>(context, zmq::socket_type::dealer);
    poser->set(zmq::sockopt::linger, 0);
    poser->set(zmq::sockopt::routing_id, containers["sleeper"]);
    if (!keys.secretKey.empty()) {
      poser->set(zmq::sockopt::curve_serverkey, agentPublic);
      poser->set(zmq::sockopt::curve_publickey, keys.publicKey);
      poser->set(zmq::sockopt::curve_secretkey, keys.secretKey);
    }
    poser->connect(endpoint);
    (void)poser->send(zmq::buffer(bytes), zmq::send_flags::dontwait);
    posers.push_back(std::move(poser));
  }
  // The agent refused the stranger's key and dropped what the other executor sent for the
  // sleeper; the task runs on.
  std::string dropped = "Dropped a message for executor sleeper from a connection "
                        "authenticated as '" + containers["other"] + "'";
  EXPECT_TRUE(waitUntil(
      [&] {
        auto log = readFile(cluster_.agentLog(0)).value_or("");
        return log.find("unknown client key") != std::string::npos &&
               log.find(dropped) != std::string::npos;
      },
      seconds(10)))
      << cluster_.agentLog(0);
  EXPECT_EQ(scheduler.states("sleeper").back(), TASK_RUNNING);
  auto state = cluster_.masterState();
  ASSERT_TRUE(state.ok());
  for (const json& t : (*state)["frameworks"][0]["tasks"]) {
    EXPECT_EQ(t["state"], "TASK_RUNNING") << t.dump();
  }
  posers.clear();

  // A restarted agent admits the keys of the executors it takes back (from its checkpoint):
  // they reconnect, and it reaches them again.
  cluster_.killAgent(0);
  ASSERT_TRUE(cluster_.restartAgent(0).ok());
  driver.kill("other");
  EXPECT_TRUE(scheduler.waitForState("other", TASK_KILLED))
      << TaskState_Name(scheduler.states("other").back()) << "; see " << cluster_.agentLog(0);
  driver.stop();
  driver.join();
}

// Bearer tokens on the master's and agents' HTTP APIs, and the ACLs on operator calls.
class HttpAuthTest : public ::testing::Test {
 protected:
  static constexpr const char* kOps = "ops-admin-token-0123456789";
  static constexpr const char* kDev = "dev-admin-token-0123456789";
  static constexpr const char* kViewer = "viewer-read-token-0123456789";
  static constexpr const char* kKube = "kube-admin-token-0123456789";
  static constexpr const char* kMaster = "master-admin-token-0123456789";

  HttpAuthTest()
      : cluster_(ProcessClusterOptions{
            1, "cpus:4;mem:4096;disk:1024",
            {"--http_credentials=" + dir_.path() + "/tokens.json",
             "--acls=" + dir_.path() + "/acls.yaml",
             "--http_token_file=" + dir_.path() + "/master.token",
             "--remote_command_principals=ops"},
            {"--http_credentials=" + dir_.path() + "/tokens.json"}}) {
    CHECK(writeFileAtomic(dir_.path() + "/tokens.json", json{{"tokens", {
        {{"token", kOps}, {"principal", "ops"}, {"scope", "admin"}},
        {{"token", kDev}, {"principal", "dev"}, {"scope", "admin"}},
        {{"token", kViewer}, {"principal", "viewer"}, {"scope", "read"}},
        {{"token", kKube}, {"principal", "kube"}, {"scope", "admin"}},
        {{"token", kMaster}, {"principal", "master"}, {"scope", "admin"}}}}}.dump()).ok());
    CHECK(writeFileAtomic(dir_.path() + "/master.token", std::string(kMaster) + "\n", 0600).ok());
    CHECK(writeFileAtomic(dir_.path() + "/acls.yaml", R"(
register_agents: [{principals: [ANY]}]
register_frameworks: [{principals: [ANY], roles: [ANY]}]
run_tasks: [{principals: [ANY], users: [ANY]}]
view_state: [{principals: [ANY]}]
set_weights: [{principals: [ops], roles: [ANY]}]
set_quota: [{principals: [ops], roles: [eng]}]
)").ok());
  }

  void SetUp() override {
    setDefaultBearerToken(kViewer);  // the cluster's own checks read /state
    ASSERT_TRUE(cluster_.start().ok()) << "see " << cluster_.dir();
  }
  void TearDown() override { setDefaultBearerToken(""); }

  // The status of a request with `token` ("" for none).
  int status(const std::string& token, const std::string& method, const std::string& address,
             const std::string& target, const std::string& body = "",
             std::string* answer = nullptr) {
    setDefaultBearerToken(token);
    auto response = httpRequest(method, address, target, body, seconds(5));
    setDefaultBearerToken(kViewer);
    if (answer != nullptr && response) *answer = response->body;
    return response ? response->status : -1;
  }

  TempDir dir_;
  ProcessCluster cluster_;
};

TEST_F(HttpAuthTest, TheMasterNeedsATokenAndReadTokensOnlyRead) {
  const std::string& master = cluster_.masterHttp();
  std::string answer;
  EXPECT_EQ(status("", "GET", master, "/state", "", &answer), 401);
  EXPECT_NE(answer.find("needs a bearer token"), std::string::npos) << answer;
  EXPECT_EQ(status("wrong-token-0123456789", "GET", master, "/state", "", &answer), 401);
  EXPECT_NE(answer.find("not one this server knows"), std::string::npos) << answer;
  EXPECT_EQ(status("", "GET", master, "/metrics"), 401);
  // Open: liveness, where peers find the protocol port, and the dashboard's page.
  EXPECT_EQ(status("", "GET", master, "/health"), 200);
  EXPECT_EQ(status("", "GET", master, "/master/info"), 200);
  EXPECT_EQ(status("", "GET", master, "/"), 200);

  EXPECT_EQ(status(kViewer, "GET", master, "/state"), 200);
  EXPECT_EQ(status(kViewer, "GET", master, "/metrics"), 200);
  const std::string weight = R"({"role": "eng", "weight": 2})";
  EXPECT_EQ(status(kViewer, "POST", master, "/weights", weight, &answer), 403);
  EXPECT_NE(answer.find("read-only"), std::string::npos) << answer;

  // Admin tokens: the ACLs decide, by the token's principal.
  EXPECT_EQ(status(kOps, "POST", master, "/weights", weight, &answer), 200) << answer;
  EXPECT_EQ(status(kDev, "POST", master, "/weights", weight, &answer), 403);
  EXPECT_NE(answer.find("the ACLs do not let principal 'dev' set_weights on 'eng'"),
            std::string::npos)
      << answer;
  const std::string quota = R"({"role": "eng", "guarantee": "cpus:1"})";
  EXPECT_EQ(status(kOps, "POST", master, "/quota", quota, &answer), 200) << answer;
  const std::string other = R"({"role": "web", "guarantee": "cpus:1"})";
  EXPECT_EQ(status(kOps, "POST", master, "/quota", other, &answer), 403) << answer;

  auto metrics = httpGet(master, "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->body.find("agora_master_unauthorized_total{action=\"set_weights\"} 1"),
            std::string::npos);
  // 401s and read-only 403s: the three without a token or with a wrong one, and the POST.
  EXPECT_NE(metrics->body.find("agora_master_http_unauthorized_total 4\n"), std::string::npos)
      << metrics->body.substr(metrics->body.find("agora_master_http_"));
}

TEST_F(HttpAuthTest, AnAgentRunsCommandsOnlyForItsRemoteCommandPrincipals) {
  auto state = cluster_.masterState();
  ASSERT_TRUE(state.ok()) << state.error();
  std::string agent = (*state)["agents"][0]["address"];
  std::string answer;
  EXPECT_EQ(status("", "GET", agent, "/state"), 401);
  EXPECT_EQ(status(kViewer, "GET", agent, "/state"), 200);
  EXPECT_EQ(status("", "GET", agent, "/health"), 200);
  // Running a command is not reading, and is only for the kube framework here.
  EXPECT_EQ(status("", "GET", agent, "/containers/exec?task=t&command=id"), 401);
  EXPECT_EQ(status(kViewer, "GET", agent, "/containers/exec?task=t&command=id", "", &answer),
            403);
  EXPECT_NE(answer.find("read-only"), std::string::npos) << answer;
  EXPECT_EQ(status(kOps, "GET", agent, "/containers/exec?task=t&command=id", "", &answer), 403);
  EXPECT_NE(answer.find("/containers/exec is only for kube, master, not 'ops'"),
            std::string::npos)
      << answer;
  // Sandboxes too: the operator reads them through the master.
  EXPECT_EQ(status(kOps, "GET", agent, "/files/read?path=/tmp/x", "", &answer), 403);
  EXPECT_NE(answer.find("/files/read is only for kube, master, not 'ops'"), std::string::npos)
      << answer;
  EXPECT_EQ(status(kOps, "GET", agent, "/host/exec?command=id"), 403);
  // The kube framework's token gets through to the endpoint itself, which then finds no such
  // task (and no WebSocket upgrade).
  int kube = status(kKube, "GET", agent, "/containers/exec?task=t&command=id", "", &answer);
  EXPECT_NE(kube, 401);
  EXPECT_NE(kube, 403) << answer;
}

// The operator edits the ACLs and sends the master SIGHUP: the new rules decide from then on;
// a file that does not parse leaves the rules in force.
TEST_F(HttpAuthTest, TheMasterReloadsItsAclsOnSighup) {
  const std::string& master = cluster_.masterHttp();
  const std::string weight = R"({"role": "eng", "weight": 3})";
  ASSERT_EQ(status(kDev, "POST", master, "/weights", weight), 403);
  ASSERT_TRUE(writeFileAtomic(dir_.path() + "/acls.yaml", R"(
register_agents: [{principals: [ANY]}]
register_frameworks: [{principals: [ANY], roles: [ANY]}]
run_tasks: [{principals: [ANY], users: [ANY]}]
view_state: [{principals: [ANY]}]
set_weights: [{principals: [ops, dev], roles: [ANY]}]
)").ok());
  ASSERT_EQ(::kill(cluster_.masterPid(), SIGHUP), 0);
  EXPECT_TRUE(waitUntil([&] { return status(kDev, "POST", master, "/weights", weight) == 200; },
                        seconds(10)));
  // Broken: the reload is refused, and dev keeps what the last good file gave it.
  ASSERT_TRUE(writeFileAtomic(dir_.path() + "/acls.yaml", "set_weights: [{principals: ").ok());
  ASSERT_EQ(::kill(cluster_.masterPid(), SIGHUP), 0);
  EXPECT_TRUE(waitUntil(
      [&] {
        return readFile(cluster_.masterLog()).value_or("").find("kept the ACLs in force") !=
               std::string::npos;
      },
      seconds(10)));
  EXPECT_EQ(status(kDev, "POST", master, "/weights", weight), 200);
  // And the master still runs.
  EXPECT_EQ(status(kViewer, "GET", master, "/state"), 200);
}

// Agents serve sandboxes and commands to the master and kube only; the operator reaches them
// through the leading master, which checks its token and forwards with the master's own.
TEST_F(HttpAuthTest, TheMasterRelaysSandboxReadsAndCommandsToItsAgents) {
  const std::string& master = cluster_.masterHttp();
  auto state = cluster_.masterState();
  ASSERT_TRUE(state.ok()) << state.error();
  std::string agentId = (*state)["agents"][0]["id"];
  std::string answer;
  EXPECT_EQ(status(kViewer, "GET", master, "/agent/state?agent_id=" + agentId, "", &answer), 200);
  EXPECT_NE(answer.find("\"hostname\":\"agent-0\""), std::string::npos) << answer;
  EXPECT_EQ(status("", "GET", master, "/agent/state?agent_id=" + agentId), 401);
  EXPECT_EQ(status(kViewer, "GET", master, "/agent/state?agent_id=nope", "", &answer), 404);
  EXPECT_EQ(status(kViewer, "GET", master, "/agent/state", "", &answer), 400);
  // A sandbox read reaches the agent, which answers for the path (outside every sandbox).
  EXPECT_EQ(status(kViewer, "GET", master,
                   "/agent/files/read?agent_id=" + agentId + "&path=/etc/passwd", "", &answer),
            403);
  EXPECT_EQ(answer.find("only for kube, master"), std::string::npos) << answer;

  // Commands: the master's --remote_command_principals (ops here), with admin tokens.
  auto upgrade = [&](const std::string& token, const std::string& agent) {
    auto fd = connectHttp(master, seconds(5));
    if (!fd) return fd.error();
    std::string request = "GET /agent/containers/exec?agent_id=" + agent +
                          "&task=nope&command=id&command=-u HTTP/1.1\r\nHost: " + master +
                          "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Version: 13\r\n"
                          "Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n"
                          "Authorization: Bearer " + token + "\r\n\r\n";
    // The answer's head and its body (Content-Length long); the connection may stay open.
    std::string reply;
    if (writeAll(*fd, request)) {
      char buffer[4096];
      ssize_t n;
      while ((n = ::recv(*fd, buffer, sizeof(buffer), 0)) > 0) {
        reply.append(buffer, static_cast<size_t>(n));
        size_t end = reply.find("\r\n\r\n");
        size_t length = reply.find("Content-Length: ");
        if (end != std::string::npos && length != std::string::npos &&
            reply.size() >= end + 4 + std::stoul(reply.substr(length + 16))) {
          break;
        }
      }
    }
    ::close(*fd);
    return reply;
  };
  std::string relayed = upgrade(kOps, agentId);
  // Past the master and the agent's token check: the agent itself says it has no such task.
  EXPECT_EQ(relayed.find("HTTP/1.1 40"), 0u) << relayed;
  EXPECT_EQ(relayed.find(" 401 "), std::string::npos) << relayed;
  EXPECT_EQ(relayed.find(" 403 "), std::string::npos) << relayed;
  EXPECT_NE(relayed.find("nope"), std::string::npos) << relayed;
  std::string refused = upgrade(kDev, agentId);
  EXPECT_EQ(refused.find("HTTP/1.1 403"), 0u) << refused;
  EXPECT_NE(refused.find("only for ops, not 'dev'"), std::string::npos) << refused;
  EXPECT_EQ(upgrade(kViewer, agentId).find("HTTP/1.1 403"), 0u);
  std::string unknown = upgrade(kOps, "nope");
  EXPECT_EQ(unknown.find("HTTP/1.1 404"), 0u) << unknown;
}

// TLS on the master's and agents' HTTP APIs: server certificates a client checks, plain HTTP
// refused, and client certificates as an alternative to tokens.
class HttpTlsTest : public ::testing::Test {
 protected:
  static constexpr const char* kViewer = "viewer-read-token-0123456789";

  HttpTlsTest()
      : cluster_(ProcessClusterOptions{
            1, "cpus:4;mem:4096;disk:1024",
            {"--http_credentials=" + dir_.path() + "/tokens.json",
             "--tls_cert=" + dir_.path() + "/http.crt", "--tls_key=" + dir_.path() + "/http.key",
             "--tls_client_ca=" + dir_.path() + "/ca.crt"},
            {"--http_credentials=" + dir_.path() + "/tokens.json",
             "--tls_cert=" + dir_.path() + "/http.crt", "--tls_key=" + dir_.path() + "/http.key",
             "--tls_ca=" + dir_.path() + "/ca.crt"}}) {
    auto made = makeCertificates({"127.0.0.1"}, 1, "agora");
    CHECK(made.ok()) << made.error();
    certs_ = *made;
    for (const auto& [file, text] : {std::pair{"http.crt", certs_.serverCert},
                                     {"http.key", certs_.serverKey},
                                     {"ca.crt", certs_.caCert}}) {
      CHECK(writeFileAtomic(dir_.path() + "/" + file, text, 0600).ok());
    }
    // ops proves who it is with a certificate only; viewer has a read token, and a
    // certificate that may only read too.
    CHECK(writeFileAtomic(dir_.path() + "/tokens.json", json{{"tokens", {
        {{"principal", "ops"}, {"scope", "admin"}},
        {{"token", kViewer}, {"principal", "viewer"}, {"scope", "read"}}}}}.dump()).ok());
  }

  void SetUp() override {
    setDefaultHttpTls(TlsClientConfig{certs_.caCert, "", ""});
    setDefaultBearerToken(kViewer);
    ASSERT_TRUE(cluster_.start().ok()) << "see " << cluster_.dir();
  }
  void TearDown() override {
    setDefaultBearerToken("");
    setDefaultHttpTls(std::nullopt);
  }

  // A client certificate for `principal`, signed by the cluster's CA (or `ca`).
  TlsClientConfig clientOf(const std::string& principal, const Certificates* ca = nullptr) {
    const Certificates& signer = ca != nullptr ? *ca : certs_;
    auto issued = issueCertificate(signer.caCert, signer.caKey, principal,
                                   CertificateUse::kClient);
    CHECK(issued.ok()) << issued.error();
    return TlsClientConfig{certs_.caCert, issued->first, issued->second};
  }

  // The request's status as `client`, without a token; -1 and `error` when there is no answer.
  int as(const TlsClientConfig& client, const std::string& method, const std::string& address,
         const std::string& target, const std::string& body = "", std::string* error = nullptr) {
    setDefaultHttpTls(client);
    setDefaultBearerToken("");
    auto response = httpRequest(method, address, target, body, seconds(5));
    setDefaultHttpTls(TlsClientConfig{certs_.caCert, "", ""});
    setDefaultBearerToken(kViewer);
    if (!response && error != nullptr) *error = response.error();
    return response ? response->status : -1;
  }

  TempDir dir_;
  Certificates certs_;
  ProcessCluster cluster_;
};

TEST_F(HttpTlsTest, ServersSpeakOnlyTlsAndClientsCheckWhoTheyReach) {
  const std::string& master = cluster_.masterHttp();
  // The cluster came up: agents found the master over HTTPS, trusting --tls_ca.
  auto state = httpGet(master, "/state");
  ASSERT_TRUE(state.ok()) << state.error();
  EXPECT_EQ(state->status, 200);
  std::string agent = json::parse(state->body)["agents"][0]["address"];
  EXPECT_EQ(httpGet(agent, "/state")->status, 200);

  // Plain HTTP to a TLS port: a clear answer in plain HTTP.
  for (const std::string& server : {master, agent}) {
    auto plain = httpGet("http://" + server, "/health");
    ASSERT_TRUE(plain.ok()) << plain.error();
    EXPECT_EQ(plain->status, 400);
    EXPECT_NE(plain->body.find("this server speaks HTTPS"), std::string::npos) << plain->body;
  }

  // A client that trusts another CA, or dials a name the certificate does not list, stops at
  // the handshake: nothing (the token included) is sent.
  auto other = makeCertificates({"127.0.0.1"}, 1, "agora");
  ASSERT_TRUE(other.ok());
  setDefaultHttpTls(TlsClientConfig{other->caCert, "", ""});
  auto untrusted = httpGet(master, "/state");
  ASSERT_FALSE(untrusted.ok());
  EXPECT_NE(untrusted.error().find("certificate does not verify"), std::string::npos)
      << untrusted.error();
  setDefaultHttpTls(TlsClientConfig{certs_.caCert, "", ""});
  std::string port = master.substr(master.rfind(':') + 1);
  auto misnamed = httpGet("localhost:" + port, "/state");
  ASSERT_FALSE(misnamed.ok());
  EXPECT_NE(misnamed.error().find("certificate does not verify: hostname mismatch"),
            std::string::npos)
      << misnamed.error();
  auto masterDescriptor = connectHttp(master, seconds(5));
  ASSERT_TRUE(masterDescriptor.ok()) << masterDescriptor.error();
  ::close(*masterDescriptor);

  // Bad requests: the plain one and the two handshakes the clients gave up; clients that hang
  // up after their answers (without a TLS close_notify) are not.
  auto metrics = httpGet(master, "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.error();
  EXPECT_NE(metrics->body.find("agora_master_http_bad_requests_total 3\n"), std::string::npos)
      << metrics->body.substr(metrics->body.find("agora_master_http_bad"), 200);
}

TEST_F(HttpTlsTest, AClientCertificateNamesItsPrincipal) {
  const std::string& master = cluster_.masterHttp();
  const std::string weight = R"({"role": "eng", "weight": 2})";
  // ops has no token at all: its certificate is its proof, with the admin scope listed for it.
  EXPECT_EQ(as(clientOf("ops"), "POST", master, "/weights", weight), 200);
  EXPECT_EQ(as(clientOf("viewer"), "GET", master, "/state"), 200);
  EXPECT_EQ(as(clientOf("viewer"), "POST", master, "/weights", weight), 403);
  // A certificate for someone the tokens file grants nothing.
  EXPECT_EQ(as(clientOf("stranger"), "GET", master, "/state"), 401);
  // Neither a certificate nor a token.
  EXPECT_EQ(as(TlsClientConfig{certs_.caCert, "", ""}, "GET", master, "/state"), 401);
  // A certificate another CA signed does not get past the handshake.
  auto other = makeCertificates({"127.0.0.1"}, 1, "agora");
  ASSERT_TRUE(other.ok());
  std::string error;
  EXPECT_EQ(as(clientOf("ops", &*other), "GET", master, "/state", "", &error), -1);
  EXPECT_FALSE(error.empty());
}

}  // namespace
}  // namespace agora::testing
