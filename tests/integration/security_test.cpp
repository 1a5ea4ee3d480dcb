// Authentication and authorisation on the protocol port, end to end: a real master with CURVE
// credentials and ACLs, real agents, frameworks on the SDK.

#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "agora/scheduler.hpp"
#include "common/curve.hpp"
#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/http_tokens.hpp"
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
  EXPECT_GE(metric("agora_master_connections_unauthenticated_total"), 2);
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

// Bearer tokens on the master's and agents' HTTP APIs, and the ACLs on operator calls.
class HttpAuthTest : public ::testing::Test {
 protected:
  static constexpr const char* kOps = "ops-admin-token-0123456789";
  static constexpr const char* kDev = "dev-admin-token-0123456789";
  static constexpr const char* kViewer = "viewer-read-token-0123456789";
  static constexpr const char* kKube = "kube-admin-token-0123456789";

  HttpAuthTest()
      : cluster_(ProcessClusterOptions{
            1, "cpus:4;mem:4096;disk:1024",
            {"--http_credentials=" + dir_.path() + "/tokens.json",
             "--acls=" + dir_.path() + "/acls.yaml"},
            {"--http_credentials=" + dir_.path() + "/tokens.json",
             "--remote_command_principals=kube"}}) {
    CHECK(writeFileAtomic(dir_.path() + "/tokens.json", json{{"tokens", {
        {{"token", kOps}, {"principal", "ops"}, {"scope", "admin"}},
        {{"token", kDev}, {"principal", "dev"}, {"scope", "admin"}},
        {{"token", kViewer}, {"principal", "viewer"}, {"scope", "read"}},
        {{"token", kKube}, {"principal", "kube"}, {"scope", "admin"}}}}}.dump()).ok());
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
  EXPECT_NE(answer.find("/containers/exec is only for kube, not 'ops'"), std::string::npos)
      << answer;
  EXPECT_EQ(status(kOps, "GET", agent, "/host/exec?command=id"), 403);
  // The kube framework's token gets through to the endpoint itself, which then finds no such
  // task (and no WebSocket upgrade).
  int kube = status(kKube, "GET", agent, "/containers/exec?task=t&command=id", "", &answer);
  EXPECT_NE(kube, 401);
  EXPECT_NE(kube, 403) << answer;
}

}  // namespace
}  // namespace agora::testing
