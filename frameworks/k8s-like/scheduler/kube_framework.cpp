#include "frameworks/k8s-like/scheduler/kube_framework.hpp"

#include <chrono>
#include <condition_variable>

#include <glog/logging.h>

#include "common/fs.hpp"
#include "common/http.hpp"

namespace agora::kube {

namespace {

// Runs a pod scheduler entry point; an object of an unexpected shape is logged, not fatal.
template <typename Fn>
void guarded(const char* what, Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    LOG(ERROR) << "Pod scheduler (" << what << "): " << e.what();
  }
}

// Where the store keeps the framework's id (outside every resource's keys).
constexpr const char* kFrameworkKey = "agora/framework";

// The poller sleeps on this so that stop() wakes it at once.
std::mutex pollMutex;
std::condition_variable pollWake;

}  // namespace

KubeFramework::KubeFramework(ApiServer* api, KubeFrameworkOptions options)
    : api_(api), options_(std::move(options)) {
  scheduler_ = std::make_unique<PodScheduler>(api_, this, options_.scheduler);
}

KubeFramework::~KubeFramework() { stop(); }

void KubeFramework::start() {
  FrameworkInfo info;
  info.set_name("kube");
  info.add_roles(options_.role);
  info.set_failover_timeout(options_.failoverTimeoutSeconds);
  info.set_checkpoint(true);
  info.add_capabilities(FrameworkInfo::MULTI_ROLE);
  info.add_capabilities(FrameworkInfo::GPU_RESOURCES);
  info.add_capabilities(FrameworkInfo::PARTITION_AWARE);
  if (!options_.webuiUrl.empty()) {
    Label* webui = info.add_labels();
    webui->set_key("agora.io/webui");
    webui->set_value(options_.webuiUrl);
  }
  // The framework id is kept in the store, so that whichever instance leads (with --zk) or a
  // restarted one resubscribes as the same framework and keeps its pods.
  Outcome kept = api_->store()->get(kFrameworkKey);
  if (kept.ok() && kept.object.value.value("id", "") != "") {
    info.set_id(kept.object.value.value("id", ""));
  } else if (auto id = readFile(options_.dataDir + "/framework_id"); id && !id->empty()) {
    std::string trimmed = *id;  // kept by an earlier version in the data directory
    while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == ' ')) {
      trimmed.pop_back();
    }
    info.set_id(trimmed);
  }
  scheduler_->start();
  SchedulerDriverOptions driverOptions;
  driverOptions.credentials = options_.credentials;
  driver_ = std::make_unique<SchedulerDriver>(this, info, options_.master, driverOptions);
  driver_->start();
  running_ = true;
  poller_ = std::thread([this] { pollState(); });
}

void KubeFramework::stop() {
  if (!running_.exchange(false)) {
    return;
  }
  *alive_ = false;
  pollWake.notify_all();
  if (poller_.joinable()) {
    poller_.join();
  }
  // Failover: the tasks keep running while `agora kube` is away.
  driver_->stop(true);
  driver_->join();
}

void KubeFramework::pollState() {
  while (running_) {
    // The master's HTTP address: as given, or (with zk://) the leader the driver follows.
    std::string master = options_.master;
    if (master.rfind("zk://", 0) == 0) {
      std::lock_guard<std::mutex> lock(masterMutex_);
      master = masterHttp_;
    }
    if (!master.empty()) {
      auto response = httpGet(master, "/state", seconds(5));
      if (response && response->status == 200) {
        auto state = nlohmann::json::parse(response->body, nullptr, false);
        if (!state.is_discarded()) {
          std::weak_ptr<bool> alive = alive_;
          api_->loop()->post([this, alive, state = std::move(state)] {
            if (alive.lock()) guarded("agents", [&] { scheduler_->agents(state); });
          });
        }
      }
    }
    // Why the master offers nothing, when it offers nothing for a reason pods should show.
    if (!master.empty() && driver_) {
      auto roles = httpGet(master, "/roles", seconds(5));
      std::string why;
      if (roles && roles->status == 200) {
        auto body = nlohmann::json::parse(roles->body, nullptr, false);
        std::string id = driver_->frameworkId();
        for (const auto& role : body.is_discarded() ? nlohmann::json::array()
                                                    : body.value("roles", nlohmann::json::array())) {
          if (role.value("name", "") != options_.role) continue;
          for (const auto& f : role.value("frameworks", nlohmann::json::array())) {
            std::string reason = f.value("why_not_offered", "");
            bool telling = reason.rfind("quota", 0) == 0 || reason.rfind("headroom", 0) == 0 ||
                           reason.rfind("fair share", 0) == 0 ||
                           reason.rfind("nothing free", 0) == 0;
            if (f.value("id", "") == id && telling) why = reason;
          }
        }
        std::weak_ptr<bool> alive = alive_;
        api_->loop()->post([this, alive, why] {
          if (alive.lock()) guarded("roles", [&] { scheduler_->offersWithheld(why); });
        });
      }
    }
    std::unique_lock<std::mutex> lock(pollMutex);
    pollWake.wait_for(lock, options_.statePollInterval, [this] { return !running_; });
  }
}

void KubeFramework::subscribed(SchedulerDriver*, const std::string& frameworkId,
                               const MasterInfo& master) {
  LOG(INFO) << "Kube framework subscribed as " << frameworkId << " to master " << master.id();
  {
    std::lock_guard<std::mutex> lock(masterMutex_);
    masterHttp_ = master.ip() + ":" + std::to_string(master.http_port());
  }
  std::weak_ptr<bool> alive = alive_;
  api_->loop()->post([this, alive, frameworkId] {
    if (!alive.lock()) return;
    Store* store = api_->store();
    nlohmann::json value = {{"id", frameworkId}};
    Outcome kept = store->get(kFrameworkKey);
    if (!kept.ok() || kept.object.value != value) {
      Outcome saved = kept.ok() ? store->update(kFrameworkKey, value)
                                : store->create(kFrameworkKey, value);
      LOG_IF(ERROR, !saved.ok()) << "Cannot keep the framework id: " << saved.message;
    }
    guarded("subscribed", [&] { scheduler_->subscribed(); });
  });
}

void KubeFramework::offers(SchedulerDriver*, const std::vector<Offer>& offers) {
  std::weak_ptr<bool> alive = alive_;
  api_->loop()->post([this, alive, offers] {
    if (alive.lock()) guarded("offers", [&] { scheduler_->offers(offers); });
  });
}

void KubeFramework::rescind(SchedulerDriver*, const std::string& offerId) {
  std::weak_ptr<bool> alive = alive_;
  api_->loop()->post([this, alive, offerId] {
    if (alive.lock()) guarded("rescind", [&] { scheduler_->rescind(offerId); });
  });
}

void KubeFramework::update(SchedulerDriver*, const TaskStatus& status) {
  std::weak_ptr<bool> alive = alive_;
  api_->loop()->post([this, alive, status] {
    if (alive.lock()) guarded("update", [&] { scheduler_->update(status); });
  });
}

void KubeFramework::error(SchedulerDriver*, const std::string& message) {
  LOG(ERROR) << "Kube framework: the driver aborted: " << message;
}

void KubeFramework::accept(const std::vector<std::string>& offerIds,
                           const std::vector<Operation>& operations, double refuseSeconds) {
  Filters filters;
  filters.set_refuse_seconds(refuseSeconds);
  driver_->accept(offerIds, operations, filters);
}

void KubeFramework::decline(const std::string& offerId, double refuseSeconds) {
  Filters filters;
  filters.set_refuse_seconds(refuseSeconds);
  driver_->decline(offerId, filters);
}

void KubeFramework::kill(const std::string& taskId, const std::string& agentId) {
  driver_->kill(taskId, agentId);
}

void KubeFramework::revive() { driver_->revive(); }
void KubeFramework::suppress() { driver_->suppress(); }
void KubeFramework::reconcile() { driver_->reconcile(); }

}  // namespace agora::kube
