#pragma once

// The kube framework as an Agora framework: a SchedulerDriver subscribed to the master (role
// `kube` by default, its framework id kept in the data directory so that a restarted
// `agora kube` gets its pods back), whose callbacks are posted into the API server's loop for
// the pod scheduler, and a poller of the master's state for the Node objects.

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "agora/scheduler.hpp"
#include "frameworks/k8s-like/scheduler/pod_scheduler.hpp"

namespace agora::kube {

struct KubeFrameworkOptions {
  std::string master;  // host:port, or zk://
  std::string credentials;  // CURVE credentials file for the master (empty: none)
  std::string role = "kube";
  std::string dataDir;  // where framework_id is kept
  double failoverTimeoutSeconds = 7 * 24 * 3600;
  Duration statePollInterval = seconds(2);
  std::string webuiUrl;  // the kube dashboard, a label the master's dashboard links to
  PodSchedulerOptions scheduler;
};

class KubeFramework final : public Scheduler, public ClusterDriver {
 public:
  KubeFramework(ApiServer* api, KubeFrameworkOptions options);
  ~KubeFramework() override;

  // Starts the driver and the state poller; the pod scheduler starts on the loop.
  void start();
  void stop();

  PodScheduler& scheduler() { return *scheduler_; }

  // Scheduler (driver thread): posted into the loop.
  void subscribed(SchedulerDriver* driver, const std::string& frameworkId,
                  const MasterInfo& master) override;
  void offers(SchedulerDriver* driver, const std::vector<Offer>& offers) override;
  void rescind(SchedulerDriver* driver, const std::string& offerId) override;
  void update(SchedulerDriver* driver, const TaskStatus& status) override;
  void error(SchedulerDriver* driver, const std::string& message) override;

  // ClusterDriver (loop thread).
  void accept(const std::vector<std::string>& offerIds, const std::vector<Operation>& operations,
              double refuseSeconds) override;
  void decline(const std::string& offerId, double refuseSeconds) override;
  void kill(const std::string& taskId, const std::string& agentId) override;
  void revive() override;
  void suppress() override;
  void reconcile() override;

 private:
  void pollState();

  ApiServer* api_;
  KubeFrameworkOptions options_;
  std::unique_ptr<PodScheduler> scheduler_;
  std::unique_ptr<SchedulerDriver> driver_;
  std::thread poller_;
  std::atomic<bool> running_{false};
  std::mutex masterMutex_;
  std::string masterHttp_;  // the leading master's HTTP address, from the subscription
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace agora::kube
