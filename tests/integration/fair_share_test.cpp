// Two frameworks on one cluster: the kube framework serving a Deployment in role `services`,
// and a batch job in role `analytics` with more tasks than the cluster holds. Weights and the
// services' quota decide the split, measured from the master's state all along.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/http_tokens.hpp"
#include "common/process.hpp"
#include "common/tls.hpp"
#include "tests/support/kube_cluster.hpp"

namespace agora::testing {
namespace {

using nlohmann::json;

// What each role's running tasks use, in cpus, as the leading master reports it.
struct Sample {
  double services = 0;
  double analytics = 0;
  int phase = 0;
};

class Sampler {
 public:
  explicit Sampler(std::string master) : master_(std::move(master)) {
    thread_ = std::thread([this] { run(); });
  }
  ~Sampler() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }
  void phase(int p) { phase_ = p; }
  Sample last() {
    std::lock_guard<std::mutex> lock(mutex_);
    return samples_.empty() ? Sample{} : samples_.back();
  }
  std::vector<Sample> all() {
    std::lock_guard<std::mutex> lock(mutex_);
    return samples_;
  }
  // The mean of the `count` samples taken after the next `skip` (at 5 a second: after
  // skip/5 seconds, over count/5), waited for up to a minute.
  Sample average(size_t skip, size_t count) {
    size_t from = all().size() + skip;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait_for(lock, seconds(60), [&] { return samples_.size() >= from + count; });
    }
    std::vector<Sample> s = all();
    Sample mean;
    size_t n = 0;
    for (size_t i = from; i < s.size() && i < from + count; ++i, ++n) {
      mean.services += s[i].services;
      mean.analytics += s[i].analytics;
    }
    mean.services /= static_cast<double>(std::max<size_t>(n, 1));
    mean.analytics /= static_cast<double>(std::max<size_t>(n, 1));
    return mean;
  }

 private:
  void run() {
    while (true) {
      auto response = httpGet(master_, "/state", seconds(5));
      json state = response && response->status == 200
                       ? json::parse(response->body, nullptr, false)
                       : json();
      if (state.is_object()) {
        Sample s;
        s.phase = phase_;
        for (const json& f : state.value("frameworks", json::array())) {
          std::string role = f.value("roles", json::array()).empty() ? "" : f["roles"][0];
          double cpus = f.value("used_resources", json::object()).value("cpus", 0.0);
          if (role == "services") s.services += cpus;
          if (role == "analytics") s.analytics += cpus;
        }
        std::lock_guard<std::mutex> lock(mutex_);
        samples_.push_back(s);
      }
      changed_.notify_all();
      // The next sample in 200 ms, or none once stopped.
      std::unique_lock<std::mutex> lock(mutex_);
      if (changed_.wait_for(lock, milliseconds(200), [this] { return stop_; })) return;
    }
  }

  std::string master_;
  bool stop_ = false;                // under mutex_
  std::condition_variable changed_;  // a new sample, or stop_
  std::atomic<int> phase_{0};
  std::mutex mutex_;
  std::vector<Sample> samples_;
  std::thread thread_;
};

TEST(FairShareTest, WeightsAndTheServicesQuotaSplitTheClusterWithABatchJob) {
  // Four agents of 2.1 cpus: each runs a kube-proxy (0.1) and four half-cpu tasks.
  KubeCluster k(4, "cpus:2.1;mem:2048", {}, {{"AGORA_ROLE", "services"}});
  REQUIRE_CLUSTER(k);
  const double total = 8.4;
  std::string credentials = k.home() + "/profiles/default/credentials";
  json profile =
      json::parse(readFile(k.home() + "/profiles/default/profile.json").value_or("{}"), nullptr,
                  false);
  std::string master;
  for (const json& d : profile.value("daemons", json::array())) {
    if (d.value("role", "") == "master") master = "https://" + d.value("http", "");
  }
  ASSERT_FALSE(master.empty()) << profile.dump();
  struct Forget {
    ~Forget() {
      setDefaultBearerToken("");
      setDefaultHttpTls(std::nullopt);
    }
  } forget;
  std::string token = readFile(credentials + "/operator.token").value_or("");
  setDefaultBearerToken(token.substr(0, token.find('\n')));
  setDefaultHttpTls(TlsClientConfig{readFile(credentials + "/http-ca.crt").value_or(""), "", ""});
  Sampler sampler(master);
  ASSERT_TRUE(waitUntil([&] { return sampler.last().services > 0; }, seconds(30)));
  const double proxies = sampler.last().services;  // the kube-proxy pods: not contended

  ASSERT_EQ(k.agora({"weights", "set", "services=1", "analytics=3"}).exitCode, 0);
  // The batch job: far more half-cpu tasks than fit, of 1.0 to 1.9 s each.
  std::string job = k.home() + "/soak.yaml";
  ASSERT_TRUE(writeFileAtomic(job, R"(name: soak
role: analytics
stages:
  - name: work
    tasks: 5000
    command: sleep 1.$((AGORA_BATCH_INDEX % 10))  # ok: the tasks' own work, 1 to 2 s
    resources: cpus:0.5;mem:32
    retries: 0
)").ok());
  auto submitted = k.agora({"batch", "submit", job});
  ASSERT_EQ(submitted.exitCode, 0) << submitted.output;
  struct Cancel {
    KubeCluster& k;
    ~Cancel() { k.agora({"batch", "cancel", "soak-1"}); }
  } cancel{k};
  // Alone, it takes all there is.
  ASSERT_TRUE(waitUntil([&] { return sampler.last().analytics >= 7.5; }, seconds(60)))
      << k.agora({"batch", "status", "soak-1"}).output;

  // A Deployment that wants the whole cluster too: sixteen pods of half a cpu.
  json deployment = {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", {{"name", "web"}}},
      {"spec",
       {{"replicas", 16},
        {"selector", {{"matchLabels", {{"app", "web"}}}}},
        {"template",
         {{"metadata", {{"labels", {{"app", "web"}}}}},
          {"spec",
           {{"containers",
             {{{"name", "main"},
               {"image", "agora/host"},
               {"command", {"/bin/sh", "-c", "exec tail -f /dev/null"}},
               {"resources", {{"requests", {{"cpu", "500m"}, {"memory", "64Mi"}}}}}}}}}}}}}}};
  std::string file = k.home() + "/web.json";
  ASSERT_TRUE(writeFileAtomic(file, deployment.dump()).ok());
  ASSERT_EQ(k.kubectl({"apply", "-f", file}).exitCode, 0);

  // Weights 1:3 (services:analytics): as the batch tasks end, the services take their
  // quarter of the 8 contended cpus, and no more.
  ASSERT_TRUE(waitUntil([&] { return sampler.last().services - proxies >= 1.9; }, seconds(60)));
  // Settled for 15 samples (3 s), then over 20 (4 s). (Within a task or two: what frees up
  // between two allocations goes to one role at once.)
  Sample split = sampler.average(15, 20);
  EXPECT_GE(split.services - proxies, 1.4) << "analytics " << split.analytics;
  EXPECT_LE(split.services - proxies, 2.9) << "analytics " << split.analytics;
  EXPECT_GE(split.analytics, 4.9) << "services " << split.services;
  EXPECT_LE(split.analytics, 6.6) << "services " << split.services;

  // A guarantee of 4 cpus for the services: they get it as batch tasks end, and from then on
  // the batch job never holds what the guarantee sets aside for them.
  ASSERT_EQ(k.agora({"quota", "set", "services", "--guarantee=cpus:4"}).exitCode, 0);
  ASSERT_TRUE(waitUntil([&] { return sampler.last().services >= 4; }, seconds(60)));
  sampler.phase(1);

  // Weights 3:1: the services take three quarters.
  ASSERT_EQ(k.agora({"weights", "set", "services=3", "analytics=1"}).exitCode, 0);
  ASSERT_TRUE(waitUntil([&] { return sampler.last().services - proxies >= 5.9; }, seconds(60)));
  split = sampler.average(15, 20);
  EXPECT_GE(split.services - proxies, 5.4) << "analytics " << split.analytics;
  EXPECT_LE(split.services - proxies, 7.0) << "analytics " << split.analytics;
  EXPECT_GE(split.analytics, 1.0) << "services " << split.services;
  EXPECT_LE(split.analytics, 2.6) << "services " << split.services;

  // The services scale down to two pods: the batch job gets back all but the guarantee.
  ASSERT_EQ(k.kubectl({"scale", "deployment/web", "--replicas=2"}).exitCode, 0);
  ASSERT_TRUE(waitUntil([&] { return sampler.last().services - proxies <= 1.0; }, seconds(60)));
  EXPECT_TRUE(waitUntil([&] { return sampler.last().analytics >= total - 4 - 0.9; }, seconds(30)))
      << "analytics " << sampler.last().analytics;
  sampler.average(0, 15);  // 3 s more of samples for the check below

  // At every moment since the services first had their guarantee, it was theirs: what the
  // batch job used left the larger of their use and the guarantee free for them.
  int checked = 0;
  for (const Sample& s : sampler.all()) {
    if (s.phase != 1) continue;
    ++checked;
    EXPECT_LE(s.analytics + std::max(s.services, 4.0), total + 1e-6)
        << "services " << s.services << ", analytics " << s.analytics;
  }
  EXPECT_GT(checked, 20);
}

}  // namespace
}  // namespace agora::testing
