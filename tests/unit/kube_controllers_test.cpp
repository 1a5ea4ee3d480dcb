// The kube framework's controllers and pod scheduler on a manual loop, with a driver that
// records what it is asked to launch and kill, and task status updates made up by the test.

#include <gtest/gtest.h>

#include "common/manual_loop.hpp"
#include "frameworks/k8s-like/apiserver/api_server.hpp"
#include "frameworks/k8s-like/controllers/controllers.hpp"
#include "frameworks/k8s-like/scheduler/pod_scheduler.hpp"
#include "tests/support/temp_dir.hpp"

namespace agora::kube {
namespace {

using nlohmann::json;

class RecordingDriver final : public ClusterDriver {
 public:
  void accept(const std::vector<std::string>& offerIds, const std::vector<Operation>& operations,
              double) override {
    accepted.insert(accepted.end(), offerIds.begin(), offerIds.end());
    for (const auto& op : operations) {
      for (const auto& t : op.launch_group().task_group().tasks()) launched.push_back(t);
    }
  }
  void decline(const std::string& offerId, double) override { declined.push_back(offerId); }
  void kill(const std::string& taskId, const std::string&) override { killed.push_back(taskId); }
  void revive() override { ++revives; }
  void suppress() override { ++suppresses; }
  void reconcile() override {}

  std::vector<std::string> accepted, declined, killed;
  std::vector<TaskInfo> launched;
  int revives = 0, suppresses = 0;
};

class KubeControllersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = FileStore::open(dir_.path(), {});
    ASSERT_TRUE(opened.ok());
    store_ = std::move(opened.value());
    api_ = std::make_unique<ApiServer>(&loop_, store_.get(), ApiServerOptions{});
    api_->bootstrap();
    gc_ = std::make_unique<GarbageCollector>(api_.get());
    replicaSets_ = std::make_unique<ReplicaSetController>(api_.get());
    deployments_ = std::make_unique<DeploymentController>(api_.get());
    scheduler_ = std::make_unique<PodScheduler>(api_.get(), &driver_);
    gc_->start();
    replicaSets_->start();
    deployments_->start();
    scheduler_->start();
    json state = {{"agents", json::array()}};
    for (int i = 0; i < 2; ++i) {
      state["agents"].push_back({{"id", "a" + std::to_string(i)},
                                 {"hostname", "node-" + std::to_string(i)},
                                 {"address", "127.0.0.1:500" + std::to_string(i)},
                                 {"resources", {{"cpus", 4}, {"mem", 4096}}},
                                 {"attributes", {{"zone", i == 0 ? "a" : "b"}}}});
    }
    scheduler_->agents(state);
    loop_.runUntilIdle();
  }

  void offerAll() {
    std::vector<Offer> offers;
    for (int i = 0; i < 2; ++i) {
      Offer o;
      o.set_id("o" + std::to_string(nextOffer_++));
      o.set_agent_id("a" + std::to_string(i));
      o.set_hostname("node-" + std::to_string(i));
      o.set_agent_address("127.0.0.1:500" + std::to_string(i));
      Resources::parse("cpus:4;mem:4096")->copyTo(o.mutable_resources());
      offers.push_back(o);
    }
    scheduler_->offers(offers);
    loop_.runUntilIdle();
  }

  // Every launched task that has not been told yet is now running (and ready).
  void runLaunched() {
    for (const TaskInfo& t : driver_.launched) {
      if (told_.insert(t.task_id()).second) {
        TaskStatus s;
        s.set_task_id(t.task_id());
        s.set_agent_id(t.agent_id());
        s.set_state(TASK_RUNNING);
        scheduler_->update(s);
      }
    }
    loop_.runUntilIdle();
  }

  void status(const std::string& taskId, TaskState state, const std::string& message = "",
              uint32_t restarts = 0) {
    std::string agent = "a0";
    for (const TaskInfo& t : driver_.launched) {
      if (t.task_id() == taskId) agent = t.agent_id();
    }
    TaskStatus s;
    s.set_task_id(taskId);
    s.set_state(state);
    s.set_message(message);
    s.set_restart_count(restarts);
    s.set_agent_id(agent);
    scheduler_->update(s);
    loop_.runUntilIdle();
  }

  // A ReplicaSet "rs" of `replicas` pods labelled app=x.
  static json replicaSet(int replicas) {
    return {{"apiVersion", "apps/v1"},
            {"kind", "ReplicaSet"},
            {"metadata", {{"name", "rs"}}},
            {"spec",
             {{"replicas", replicas},
              {"selector", {{"matchLabels", {{"app", "x"}}}}},
              {"template",
               {{"metadata", {{"labels", {{"app", "x"}}}}},
                {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "agora/host"},
                                                       {"command", {"sleep", "1"}}}})}}}}}}}};
  }

  std::vector<json> pods() { return api_->list(*findResource("", "v1", "pods"), "default"); }
  std::vector<json> replicaSets() {
    return api_->list(*findResource("apps", "v1", "replicasets"), "default");
  }

  json deployment(const std::string& image) {
    return {{"apiVersion", "apps/v1"},
            {"kind", "Deployment"},
            {"metadata", {{"name", "web"}}},
            {"spec",
             {{"replicas", 3},
              {"strategy", {{"rollingUpdate", {{"maxSurge", 1}, {"maxUnavailable", 0}}}}},
              {"selector", {{"matchLabels", {{"app", "web"}}}}},
              {"template",
               {{"metadata", {{"labels", {{"app", "web"}}}}},
                {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "agora/host"},
                                                       {"command", {"sleep", image}}}})}}}}}}}};
  }

  agora::testing::TempDir dir_;
  ManualLoop loop_;
  std::unique_ptr<FileStore> store_;
  std::unique_ptr<ApiServer> api_;
  RecordingDriver driver_;
  std::unique_ptr<GarbageCollector> gc_;
  std::unique_ptr<ReplicaSetController> replicaSets_;
  std::unique_ptr<DeploymentController> deployments_;
  std::unique_ptr<PodScheduler> scheduler_;
  std::set<std::string> told_;
  int nextOffer_ = 0;
};

TEST_F(KubeControllersTest, ADeploymentRollsWithinItsSurgeAndCascadesOnDelete) {
  const ResourceType& deployments = *findResource("apps", "v1", "deployments");
  ASSERT_TRUE(api_->create(deployments, "default", deployment("1")).ok());
  loop_.runUntilIdle();
  ASSERT_EQ(replicaSets().size(), 1u);
  json rs = replicaSets()[0];
  EXPECT_EQ(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1");
  EXPECT_TRUE(rs["metadata"]["labels"].contains("pod-template-hash"));
  ASSERT_EQ(pods().size(), 3u);
  for (const json& p : pods()) {
    EXPECT_EQ(p["metadata"]["ownerReferences"][0]["uid"], rs["metadata"]["uid"]);
  }
  offerAll();
  runLaunched();
  // Spread: both nodes used.
  std::set<std::string> nodes;
  for (const json& p : pods()) nodes.insert(p["spec"].value("nodeName", ""));
  EXPECT_EQ(nodes.size(), 2u);
  json d = api_->get(deployments, "default", "web").object;
  EXPECT_EQ(d["status"]["availableReplicas"], 3);

  // A new template: never more than replicas + maxSurge pods, never fewer than 3 available.
  json next = d;
  next["spec"]["template"]["spec"]["containers"][0]["command"] = {"sleep", "2"};
  ASSERT_TRUE(api_->update(deployments, "default", "web", next).ok());
  loop_.runUntilIdle();
  for (int step = 0; step < 20; ++step) {
    size_t active = 0;
    for (const json& p : pods()) active += p["metadata"].contains("deletionTimestamp") ? 0 : 1;
    EXPECT_LE(active, 4u) << "step " << step;
    offerAll();
    runLaunched();
    // Pods being deleted stop when killed.
    for (const std::string& id : driver_.killed) {
      if (told_.insert("killed:" + id).second) status(id, TASK_KILLED);
    }
  }
  d = api_->get(deployments, "default", "web").object;
  EXPECT_EQ(d["status"]["updatedReplicas"], 3) << d["status"].dump();
  EXPECT_EQ(d["status"]["availableReplicas"], 3);
  EXPECT_EQ(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2");
  ASSERT_EQ(replicaSets().size(), 2u);

  // Deleting it (background): the ReplicaSets, then the pods (killed, then gone).
  ASSERT_TRUE(api_->remove(deployments, "default", "web", DeleteOptions{}).ok());
  loop_.runUntilIdle();
  EXPECT_TRUE(replicaSets().empty());
  for (const std::string& id : driver_.killed) {
    if (told_.insert("killed:" + id).second) status(id, TASK_KILLED);
  }
  EXPECT_TRUE(pods().empty());
}

TEST_F(KubeControllersTest, AScaleMidRolloutIsSharedInProportion) {
  const ResourceType& deployments = *findResource("apps", "v1", "deployments");
  json d = deployment("1");
  d["spec"]["replicas"] = 10;
  d["spec"]["strategy"]["rollingUpdate"] = {{"maxSurge", 3}, {"maxUnavailable", 2}};
  ASSERT_TRUE(api_->create(deployments, "default", d).ok());
  loop_.runUntilIdle();
  offerAll();
  runLaunched();
  // A new template whose pods never become ready (they are not told to run).
  json next = api_->get(deployments, "default", "web").object;
  next["spec"]["template"]["spec"]["containers"][0]["command"] = {"sleep", "2"};
  ASSERT_TRUE(api_->update(deployments, "default", "web", next).ok());
  loop_.runUntilIdle();
  auto sizes = [&] {
    std::map<std::string, int64_t> out;
    for (const json& rs : replicaSets()) {
      out[rs["metadata"]["annotations"].value("deployment.kubernetes.io/revision", "")] =
          rs["spec"].value("replicas", 0);
    }
    return out;
  };
  auto before = sizes();
  EXPECT_EQ(before["1"] + before["2"], 13);  // 10 + maxSurge
  // Scaled to 15 mid-rollout: both grow, to 15 + maxSurge in all.
  next = api_->get(deployments, "default", "web").object;
  next["spec"]["replicas"] = 15;
  ASSERT_TRUE(api_->update(deployments, "default", "web", next).ok());
  loop_.runUntilIdle();
  auto after = sizes();
  EXPECT_EQ(after["1"] + after["2"], 18);
  EXPECT_GT(after["1"], before["1"]);
  EXPECT_GT(after["2"], before["2"]);
}

TEST_F(KubeControllersTest, RecreateStopsTheOldPodsFirst) {
  const ResourceType& deployments = *findResource("apps", "v1", "deployments");
  json d = deployment("1");
  d["spec"]["strategy"] = {{"type", "Recreate"}};
  ASSERT_TRUE(api_->create(deployments, "default", d).ok());
  loop_.runUntilIdle();
  offerAll();
  runLaunched();
  json next = api_->get(deployments, "default", "web").object;
  next["spec"]["template"]["spec"]["containers"][0]["command"] = {"sleep", "2"};
  ASSERT_TRUE(api_->update(deployments, "default", "web", next).ok());
  loop_.runUntilIdle();
  // The old ReplicaSet goes to zero; the new one waits until its pods are gone.
  int64_t newSize = -1;
  for (const json& rs : replicaSets()) {
    std::string revision = rs["metadata"]["annotations"].value("deployment.kubernetes.io/revision", "");
    if (revision == "1") {
      EXPECT_EQ(rs["spec"]["replicas"], 0);
    }
    if (revision == "2") newSize = rs["spec"].value("replicas", -1);
  }
  EXPECT_EQ(newSize, 0);
  for (const std::string& id : driver_.killed) {
    if (told_.insert("killed:" + id).second) status(id, TASK_KILLED);
  }
  offerAll();
  runLaunched();
  json done = api_->get(deployments, "default", "web").object;
  EXPECT_EQ(done["status"]["updatedReplicas"], 3) << done["status"].dump();
  EXPECT_EQ(done["status"]["availableReplicas"], 3);
}

TEST_F(KubeControllersTest, AMissedProgressDeadlineIsReportedAndOptionallyRolledBack) {
  const ResourceType& deployments = *findResource("apps", "v1", "deployments");
  json d = deployment("1");
  d["metadata"]["annotations"] = {{"agora.io/auto-revert", "true"}};
  d["spec"]["progressDeadlineSeconds"] = 30;
  ASSERT_TRUE(api_->create(deployments, "default", d).ok());
  loop_.runUntilIdle();
  offerAll();
  runLaunched();
  // A template whose pods never run: the rollout stalls.
  json next = api_->get(deployments, "default", "web").object;
  next["spec"]["template"]["spec"]["containers"][0]["command"] = {"sleep", "never"};
  ASSERT_TRUE(api_->update(deployments, "default", "web", next).ok());
  loop_.runUntilIdle();
  offerAll();  // launched, but the test never says they run
  loop_.advance(seconds(31));
  loop_.runUntilIdle();
  json after = api_->get(deployments, "default", "web").object;
  // Rolled back to the first template, and said so.
  EXPECT_EQ(after["spec"]["template"]["spec"]["containers"][0]["command"][1], "1");
  bool exceeded = false;
  bool rolledBack = false;
  for (const json& e : api_->list(*findResource("", "v1", "events"), "default")) {
    exceeded = exceeded || e.value("reason", "") == "ProgressDeadlineExceeded";
    rolledBack = rolledBack || e.value("reason", "") == "RolledBack";
  }
  EXPECT_TRUE(exceeded);
  EXPECT_TRUE(rolledBack);
}

TEST_F(KubeControllersTest, AReplicaSetAdoptsOrphansAndScalesDownTheLeastUsefulFirst) {
  const ResourceType& podType = *findResource("", "v1", "pods");
  const ResourceType& replicaSets = *findResource("apps", "v1", "replicasets");
  auto orphan = [&](const std::string& name) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"labels", {{"app", "x"}}}}},
                {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "agora/host"},
                                                       {"command", {"sleep", "1"}}}})}}}};
    ASSERT_TRUE(api_->create(podType, "default", pod).ok());
  };
  orphan("running");
  offerAll();
  runLaunched();  // "running" runs; "pending" below never gets a node
  scheduler_.reset();
  orphan("pending");
  loop_.runUntilIdle();
  json rs = replicaSet(1);
  ASSERT_TRUE(api_->create(replicaSets, "default", rs).ok());
  loop_.runUntilIdle();
  // Both adopted; one too many: the pending one goes, the running one stays.
  auto left = pods();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0]["metadata"]["name"], "running");
  EXPECT_EQ(left[0]["metadata"]["ownerReferences"][0]["name"], "rs");
}

TEST_F(KubeControllersTest, ServicesGetAddressesAndEndpointsFollowReadyPods) {
  EndpointsController endpoints(api_.get());
  endpoints.start();
  const ResourceType& services = *findResource("", "v1", "services");
  auto service = [&](const std::string& name, const std::string& type,
                     json extra = json::object()) {
    json svc = {{"apiVersion", "v1"},
                {"kind", "Service"},
                {"metadata", {{"name", name}}},
                {"spec",
                 {{"type", type},
                  {"selector", {{"app", "web"}}},
                  {"ports", json::array({{{"port", 80}, {"targetPort", 8080}}})}}}};
    svc["spec"].update(extra);
    return api_->create(services, "default", svc);
  };
  ApiOutcome a = service("a", "ClusterIP");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.object["spec"]["clusterIP"], "127.96.0.1");
  ApiOutcome b = service("b", "NodePort");
  EXPECT_EQ(b.object["spec"]["clusterIP"], "127.96.0.2");
  EXPECT_EQ(b.object["spec"]["ports"][0]["nodePort"], 30000);
  ApiOutcome lb = service("lb", "LoadBalancer");
  EXPECT_EQ(lb.object["status"]["loadBalancer"]["ingress"][0]["ip"], "127.97.0.1");
  EXPECT_EQ(lb.object["spec"]["ports"][0]["nodePort"], 30001);
  ApiOutcome headless = service("h", "ClusterIP", {{"clusterIP", "None"}});
  EXPECT_EQ(headless.object["spec"]["clusterIP"], "None");
  ApiOutcome taken = service("dup", "ClusterIP", {{"clusterIP", "127.96.0.1"}});
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error->causes[0].detail, "provided IP is already allocated");
  ApiOutcome outside = service("far", "NodePort",
                               {{"ports", json::array({{{"port", 80}, {"nodePort", 80}}})}});
  ASSERT_FALSE(outside.ok());
  // An update keeps what was given.
  json next = b.object;
  next["spec"].erase("clusterIP");
  next["spec"]["ports"][0].erase("nodePort");
  ApiOutcome kept = api_->update(services, "default", "b", next);
  ASSERT_TRUE(kept.ok()) << kept.error->message;
  EXPECT_EQ(kept.object["spec"]["clusterIP"], "127.96.0.2");
  EXPECT_EQ(kept.object["spec"]["ports"][0]["nodePort"], 30000);

  // Endpoints: the selected pods once they run; not ready ones apart.
  const ResourceType& deployments = *findResource("apps", "v1", "deployments");
  json d = deployment("1");
  d["spec"]["replicas"] = 2;
  ASSERT_TRUE(api_->create(deployments, "default", d).ok());
  loop_.runUntilIdle();
  offerAll();
  runLaunched();
  const ResourceType& endpointsType = *findResource("", "v1", "endpoints");
  json ep = api_->get(endpointsType, "default", "a").object;
  ASSERT_EQ(ep["subsets"].size(), 1u) << ep.dump();
  EXPECT_EQ(ep["subsets"][0]["addresses"].size(), 2u);
  EXPECT_EQ(ep["subsets"][0]["ports"][0]["port"], 8080);
  json slice = api_->get(*findResource("discovery.k8s.io", "v1", "endpointslices"), "default",
                         "a-agora").object;
  EXPECT_EQ(slice["endpoints"].size(), 2u);
  EXPECT_EQ(slice["metadata"]["labels"]["kubernetes.io/service-name"], "a");
  // A pod that turns unready moves to notReadyAddresses.
  std::string uid = pods()[0]["metadata"].value("uid", "");
  TaskStatus unready;
  unready.set_task_id(PodScheduler::taskId(uid, "c"));
  unready.set_state(TASK_RUNNING);
  unready.set_ready(false);
  unready.set_agent_id(pods()[0]["metadata"]["annotations"].value("agora.io/agent-id", ""));
  scheduler_->update(unready);
  loop_.runUntilIdle();
  ep = api_->get(endpointsType, "default", "a").object;
  EXPECT_EQ(ep["subsets"][0]["addresses"].size(), 1u) << ep.dump();
  EXPECT_EQ(ep["subsets"][0]["notReadyAddresses"].size(), 1u);
  // The service goes: its Endpoints follow.
  ASSERT_TRUE(api_->remove(services, "default", "a", DeleteOptions{}).ok());
  loop_.runUntilIdle();
  EXPECT_FALSE(api_->get(endpointsType, "default", "a").ok());
}

TEST_F(KubeControllersTest, ContainersGetTheirEnvironmentFromConfigMapsSecretsAndServices) {
  api_->create(*findResource("", "v1", "configmaps"), "default",
               {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "settings"}}},
                {"data", {{"color", "blue"}, {"size", "9"}}}});
  api_->create(*findResource("", "v1", "secrets"), "default",
               {{"apiVersion", "v1"}, {"kind", "Secret"}, {"metadata", {{"name", "pw"}}},
                {"stringData", {{"password", "hunter2"}}}});
  api_->create(*findResource("", "v1", "services"), "default",
               {{"apiVersion", "v1"}, {"kind", "Service"}, {"metadata", {{"name", "my-db"}}},
                {"spec", {{"ports", json::array({{{"port", 5432}}})}}}});
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "p"}}},
              {"spec",
               {{"containers",
                 json::array(
                     {{{"name", "c"},
                       {"image", "agora/host"},
                       {"command", {"env"}},
                       {"envFrom", json::array({{{"configMapRef", {{"name", "settings"}}},
                                                 {"prefix", "CFG_"}}})},
                       {"env",
                        json::array(
                            {{{"name", "COLOR"},
                              {"valueFrom",
                               {{"configMapKeyRef", {{"name", "settings"}, {"key", "color"}}}}}},
                             {{"name", "PASSWORD"},
                              {"valueFrom",
                               {{"secretKeyRef", {{"name", "pw"}, {"key", "password"}}}}}},
                             {{"name", "MISSING"},
                              {"valueFrom",
                               {{"configMapKeyRef",
                                 {{"name", "nope"}, {"key", "x"}, {"optional", true}}}}}},
                             {{"name", "ME"},
                              {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}},
                             {{"name", "NODE"},
                              {"valueFrom",
                               {{"fieldRef", {{"fieldPath", "spec.nodeName"}}}}}}})}}})}}}};
  ASSERT_TRUE(api_->create(*findResource("", "v1", "pods"), "default", pod).ok());
  offerAll();
  ASSERT_EQ(driver_.launched.size(), 1u);
  std::map<std::string, std::string> env;
  for (const auto& e : driver_.launched[0].command().environment()) env[e.name()] = e.value();
  EXPECT_EQ(env["COLOR"], "blue");
  EXPECT_EQ(env["CFG_size"], "9");
  EXPECT_EQ(env["PASSWORD"], "hunter2");
  EXPECT_EQ(env.count("MISSING"), 0u);
  EXPECT_EQ(env["ME"], "p");
  EXPECT_FALSE(env["NODE"].empty());
  EXPECT_EQ(env["MY_DB_SERVICE_HOST"], "127.96.0.1");
  EXPECT_EQ(env["MY_DB_SERVICE_PORT"], "5432");

  // A ConfigMap that is not there (and not optional): the pod waits, and says why.
  pod["metadata"]["name"] = "q";
  pod["spec"]["containers"][0]["env"][0]["valueFrom"]["configMapKeyRef"]["name"] = "absent";
  ASSERT_TRUE(api_->create(*findResource("", "v1", "pods"), "default", pod).ok());
  offerAll();
  json waiting = api_->get(*findResource("", "v1", "pods"), "default", "q").object;
  EXPECT_EQ(waiting["status"]["phase"], "Pending");
  EXPECT_NE(waiting["status"]["conditions"][0].value("message", "").find(
                "configmap \"absent\" not found"),
            std::string::npos)
      << waiting["status"].dump();
}

TEST_F(KubeControllersTest, PodStatusFollowsItsTasks) {
  const ResourceType& podType = *findResource("", "v1", "pods");
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "p"}}},
              {"spec",
               {{"nodeSelector", {{"zone", "b"}}},
                {"containers", json::array({{{"name", "c"}, {"image", "agora/host"},
                                             {"command", {"false"}},
                                             {"readinessProbe",
                                              {{"exec", {{"command", {"true"}}}}}}}})}}}};
  ASSERT_TRUE(api_->create(podType, "default", pod).ok());
  offerAll();
  json bound = api_->get(podType, "default", "p").object;
  EXPECT_EQ(bound["spec"]["nodeName"], "node-1");  // the selector's zone
  ASSERT_EQ(driver_.launched.size(), 1u);
  const TaskInfo& task = driver_.launched[0];
  EXPECT_TRUE(task.has_readiness_check());
  EXPECT_EQ(task.restart_policy().mode(), RestartPolicy::ALWAYS);
  EXPECT_EQ(task.restart_policy().backoff_seconds(), 10);

  status(task.task_id(), TASK_RUNNING);
  json running = api_->get(podType, "default", "p").object;
  EXPECT_EQ(running["status"]["phase"], "Running");
  EXPECT_EQ(running["status"]["containerStatuses"][0]["ready"], false);  // no verdict yet

  status(task.task_id(), TASK_RUNNING, "Command exited with status 3; restarting in 10secs", 1);
  json crashing = api_->get(podType, "default", "p").object;
  const json& c = crashing["status"]["containerStatuses"][0];
  EXPECT_EQ(c["state"]["waiting"]["reason"], "CrashLoopBackOff");
  EXPECT_EQ(c["lastState"]["terminated"]["exitCode"], 3);
  EXPECT_EQ(c["restartCount"], 1);

  // A pod too big for any node: Pending, Unschedulable, with the reason.
  json huge = pod;
  huge["metadata"]["name"] = "huge";
  huge["spec"].erase("nodeSelector");
  huge["spec"]["containers"][0]["resources"] = {{"requests", {{"cpu", "64"}}}};
  ASSERT_TRUE(api_->create(podType, "default", huge).ok());
  offerAll();
  json pending = api_->get(podType, "default", "huge").object;
  EXPECT_EQ(pending["status"]["phase"], "Pending");
  EXPECT_EQ(pending["status"]["conditions"][0]["reason"], "Unschedulable");
  EXPECT_EQ(pending["status"]["conditions"][0]["message"],
            "0/2 nodes are available: 2 Insufficient cpu.");

  // Its image missing: ErrImagePull with the message, then a retry on the same node.
  json imaged = pod;
  imaged["metadata"]["name"] = "imaged";
  imaged["spec"]["containers"][0]["image"] = "nginx:1.25";
  ASSERT_TRUE(api_->create(podType, "default", imaged).ok());
  offerAll();
  TaskInfo pulled = driver_.launched.back();
  EXPECT_EQ(pulled.container().image(), "nginx:1.25");
  status(pulled.task_id(), TASK_FAILED,
         "no image 'nginx:1.25' in the store /x (import it with `agora image import`)");
  json failed = api_->get(podType, "default", "imaged").object;
  EXPECT_EQ(failed["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
            "ErrImagePull");
  size_t launches = driver_.launched.size();
  loop_.advance(seconds(11));
  offerAll();
  EXPECT_EQ(driver_.launched.size(), launches + 1);  // tried again
}

TEST_F(KubeControllersTest, PodsOnALostAgentAreReplaced) {
  const ResourceType& replicaSets = *findResource("apps", "v1", "replicasets");
  json rs = replicaSet(2);
  ASSERT_TRUE(api_->create(replicaSets, "default", rs).ok());
  loop_.runUntilIdle();
  offerAll();
  runLaunched();
  ASSERT_EQ(pods().size(), 2u);
  std::string lost = pods()[0]["metadata"].value("name", "");
  std::string uid = pods()[0]["metadata"].value("uid", "");
  status(PodScheduler::taskId(uid, "c"), TASK_LOST, "agent removed");
  ASSERT_EQ(pods().size(), 2u);
  for (const json& p : pods()) EXPECT_NE(p["metadata"].value("name", ""), lost);
}

TEST_F(KubeControllersTest, EventsGoAnHourAfterTheyLastHappened) {
  const ResourceType& events = *findResource("", "v1", "events");
  json object = {{"apiVersion", "v1"},
                 {"kind", "ConfigMap"},
                 {"metadata", {{"name", "c"}, {"namespace", "default"}, {"uid", "u-c"}}}};
  api_->recordEvent(object, "Normal", "Early", "the first", "test");
  loop_.advance(std::chrono::minutes(30));
  api_->recordEvent(object, "Normal", "Late", "the second", "test");
  auto reasons = [&] {
    std::set<std::string> out;
    for (const json& e : api_->list(events, "default")) {
      if (e.value("involvedObject", json::object()).value("name", "") == "c") {
        out.insert(e.value("reason", ""));
      }
    }
    return out;
  };
  EXPECT_EQ(reasons(), (std::set<std::string>{"Early", "Late"}));
  loop_.advance(std::chrono::minutes(31));  // the first is 61 minutes old, the second 31
  EXPECT_EQ(reasons(), (std::set<std::string>{"Late"}));
  // The same thing said again counts up, and is kept from its last time.
  api_->recordEvent(object, "Normal", "Late", "the second", "test");
  loop_.advance(std::chrono::minutes(45));
  EXPECT_EQ(reasons(), (std::set<std::string>{"Late"}));
  loop_.advance(std::chrono::minutes(16));
  EXPECT_TRUE(reasons().empty());
}

TEST_F(KubeControllersTest, AnAgentsOfferedPiecesAreTakenTogetherAndIdleOffersGoBack) {
  const ResourceType& podType = *findResource("", "v1", "pods");
  auto piece = [&](const std::string& id, const std::string& resources) {
    Offer o;
    o.set_id(id);
    o.set_agent_id("a0");
    o.set_hostname("node-0");
    o.set_agent_address("127.0.0.1:5000");
    Resources::parse(resources)->copyTo(o.mutable_resources());
    scheduler_->offers({o});
    loop_.runUntilIdle();
  };
  // Nothing waits: an offer is declined at once, not held.
  piece("idle", "cpus:4;mem:4096");
  EXPECT_EQ(driver_.declined, (std::vector<std::string>{"idle"}));
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "p"}}},
              {"spec",
               {{"containers",
                 json::array({{{"name", "c"},
                               {"image", "agora/host"},
                               {"command", {"sleep", "1"}},
                               {"resources",
                                {{"requests", {{"cpu", "500m"}, {"memory", "64Mi"}}}}}}})}}}};
  ASSERT_TRUE(api_->create(podType, "default", pod).ok());
  loop_.runUntilIdle();
  // The master offers the agent's memory apart from the cpus a task gave back: neither piece
  // holds the pod, both together do.
  piece("mem", "cpus:0.1;mem:1024");
  EXPECT_TRUE(driver_.accepted.empty());
  piece("cpus", "cpus:0.5;mem:32");
  EXPECT_EQ(driver_.accepted, (std::vector<std::string>{"mem", "cpus"}));
  ASSERT_EQ(driver_.launched.size(), 1u);
  EXPECT_EQ(driver_.launched[0].agent_id(), "a0");
}

}  // namespace
}  // namespace agora::kube
