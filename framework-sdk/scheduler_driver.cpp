#include <condition_variable>
#include <mutex>
#include <thread>

#include <glog/logging.h>

#include "agora/scheduler.hpp"
#include "common/detector.hpp"
#include "common/event_loop.hpp"
#include "common/ids.hpp"
#include "common/curve.hpp"
#include "common/tls.hpp"
#include "common/zmq_transport.hpp"

namespace agora {

struct SchedulerDriver::Impl {
  enum class Phase { kIdle, kDetecting, kSubscribing, kSubscribed };

  Impl(SchedulerDriver* driver, Scheduler* scheduler, FrameworkInfo framework, std::string master,
       SchedulerDriverOptions options)
      : driver(driver), scheduler(scheduler), framework(std::move(framework)),
        master(std::move(master)), options(options) {}

  // --- on the loop thread ---
  void detect();
  void subscribe();
  void onSubscribed(const SchedulerEvent::Subscribed& subscribed);
  void onEvent(Envelope&& envelope);
  void send(SchedulerCall call);
  void sendHeartbeat();
  void checkLiveness();
  void finish(DriverStatus final, bool teardown);
  void fail(const std::string& message);

  // --- any thread ---
  void post(std::function<void()> fn) { loop.post(std::move(fn)); }
  void postCall(SchedulerCall call) {
    post([this, call = std::move(call)]() mutable {
      if (phase != Phase::kSubscribed) {
        VLOG(1) << "Dropping a call while not subscribed";
        return;
      }
      send(std::move(call));
    });
  }
  void setStatus(DriverStatus s) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      status = s;
    }
    changed.notify_all();
  }

  SchedulerDriver* driver;
  Scheduler* scheduler;
  FrameworkInfo framework;
  std::string master;
  SchedulerDriverOptions options;

  zmq::context_t context{1};
  EventLoop loop;
  std::unique_ptr<ZmqDealer> link;
  std::unique_ptr<MasterDetector> detector;
  std::thread thread;

  mutable std::mutex mutex;
  std::condition_variable changed;
  DriverStatus status = DriverStatus::kNotStarted;  // guarded by mutex
  std::string frameworkIdCopy;                      // guarded by mutex

  Phase phase = Phase::kIdle;
  bool connectionDropped = false;
  std::string endpoint;
  Duration backoff = milliseconds(250);
  Duration heartbeatInterval = seconds(5);
  TimePoint lastEvent;
  TimePoint searchingSince;
  TimerId retryTimer = 0;
  TimerId heartbeatTimer = 0;
  TimerId livenessTimer = 0;
  uint64_t generation = 0;
};

void SchedulerDriver::Impl::detect() {
  if (phase == Phase::kIdle) {
    return;
  }
  loop.cancel(retryTimer);
  if (phase == Phase::kSubscribed) {
    searchingSince = loop.now();
  }
  phase = Phase::kDetecting;
  uint64_t mine = ++generation;
  detector->detect([this, mine](Result<MasterInfo> info) {
    if (mine != generation || phase != Phase::kDetecting) {
      return;
    }
    if (options.masterTimeout.count() > 0 && loop.now() - searchingSince > options.masterTimeout) {
      fail("no master reachable at " + master + " within " +
           formatDuration(options.masterTimeout) +
           (info ? std::string() : ": " + info.error()));
      return;
    }
    if (!info) {
      LOG_EVERY_N(WARNING, 10) << "Looking for the master at " << master << ": " << info.error();
      retryTimer = loop.after(backoff, [this] { detect(); });
      backoff = std::min<Duration>(backoff * 2, seconds(10));
      return;
    }
    if (endpoint != info->endpoint()) {
      connectionDropped = false;
      Status connected = link->connect(info->endpoint());
      if (!connected) {
        LOG(WARNING) << connected.error();
        retryTimer = loop.after(backoff, [this] { detect(); });
        return;
      }
      endpoint = info->endpoint();
    }
    phase = Phase::kSubscribing;
    subscribe();
  });
}

void SchedulerDriver::Impl::subscribe() {
  SchedulerCall call;
  *call.mutable_subscribe()->mutable_framework_info() = framework;
  call.set_framework_id(framework.id());
  send(std::move(call));
  loop.cancel(retryTimer);
  retryTimer = loop.after(backoff, [this] {
    if (phase == Phase::kSubscribing) {
      endpoint.clear();  // reconnect: the master may have moved or restarted
      detect();
    }
  });
  backoff = std::min<Duration>(backoff * 2, seconds(10));
}

void SchedulerDriver::Impl::onSubscribed(const SchedulerEvent::Subscribed& subscribed) {
  if (phase != Phase::kSubscribing && phase != Phase::kSubscribed) {
    return;
  }
  phase = Phase::kSubscribed;
  loop.cancel(retryTimer);
  retryTimer = 0;
  backoff = milliseconds(250);
  framework.set_id(subscribed.framework_id());
  {
    std::lock_guard<std::mutex> lock(mutex);
    frameworkIdCopy = subscribed.framework_id();
  }
  if (subscribed.heartbeat_interval_seconds() > 0) {
    heartbeatInterval = fromSeconds(subscribed.heartbeat_interval_seconds());
  }
  lastEvent = loop.now();
  loop.cancel(heartbeatTimer);
  sendHeartbeat();
  VLOG(1) << "Subscribed as framework " << subscribed.framework_id();
  scheduler->subscribed(driver, subscribed.framework_id(), subscribed.master_info());
}

void SchedulerDriver::Impl::sendHeartbeat() {
  if (phase == Phase::kSubscribed) {
    SchedulerCall call;
    call.mutable_heartbeat();
    send(std::move(call));
  }
  heartbeatTimer = loop.after(heartbeatInterval, [this] { sendHeartbeat(); });
}

void SchedulerDriver::Impl::checkLiveness() {
  if (phase == Phase::kSubscribed && loop.now() - lastEvent > heartbeatInterval * 3) {
    LOG(WARNING) << "No word from the master for " << formatDuration(heartbeatInterval * 3)
                 << "; subscribing again";
    scheduler->disconnected(driver);
    endpoint.clear();
    detect();
  }
  livenessTimer = loop.after(std::max<Duration>(heartbeatInterval / 2, milliseconds(100)),
                             [this] { checkLiveness(); });
}

void SchedulerDriver::Impl::send(SchedulerCall call) {
  if (call.framework_id().empty()) {
    call.set_framework_id(framework.id());
  }
  Envelope envelope;
  *envelope.mutable_scheduler_call() = std::move(call);
  link->send("master", envelope);
}

void SchedulerDriver::Impl::onEvent(Envelope&& envelope) {
  if (!envelope.has_scheduler_event() || phase == Phase::kIdle) {
    return;
  }
  lastEvent = loop.now();
  SchedulerEvent& event = *envelope.mutable_scheduler_event();
  switch (event.event_case()) {
    case SchedulerEvent::kSubscribed:
      onSubscribed(event.subscribed());
      return;
    case SchedulerEvent::kError: {
      const auto& error = event.error();
      if (error.code() == ERROR_NOT_SUBSCRIBED) {
        if (phase == Phase::kSubscribed) {
          LOG(WARNING) << "Master says: " << error.message() << "; subscribing again";
          phase = Phase::kSubscribing;
          subscribe();
        }
      } else if (error.code() == ERROR_FRAMEWORK_REMOVED ||
                 ((error.code() == ERROR_INVALID || error.code() == ERROR_UNAUTHORIZED) &&
                  phase == Phase::kSubscribing)) {
        fail(error.message());
      } else {
        LOG(WARNING) << "Master refused a call: " << error.message();
      }
      return;
    }
    default:
      break;
  }
  if (phase != Phase::kSubscribed) {
    return;
  }
  switch (event.event_case()) {
    case SchedulerEvent::kOffers: {
      std::vector<Offer> offers(event.offers().offers().begin(), event.offers().offers().end());
      scheduler->offers(driver, offers);
      return;
    }
    case SchedulerEvent::kRescind:
      scheduler->rescind(driver, event.rescind().offer_id());
      return;
    case SchedulerEvent::kInverseOffers: {
      std::vector<InverseOffer> inverse(event.inverse_offers().inverse_offers().begin(),
                                        event.inverse_offers().inverse_offers().end());
      scheduler->inverseOffers(driver, inverse);
      return;
    }
    case SchedulerEvent::kUpdate: {
      const TaskStatus& status = event.update().status();
      scheduler->update(driver, status);
      if (options.implicitAcknowledgements && !status.uuid().empty() && phase == Phase::kSubscribed) {
        SchedulerCall call;
        auto* ack = call.mutable_acknowledge();
        ack->set_agent_id(status.agent_id());
        ack->set_task_id(status.task_id());
        ack->set_uuid(status.uuid());
        send(std::move(call));
      }
      return;
    }
    case SchedulerEvent::kMessage:
      scheduler->message(driver, event.message().agent_id(), event.message().executor_id(),
                         event.message().data());
      return;
    case SchedulerEvent::kFailure: {
      std::optional<int> status;
      if (event.failure().has_status()) {
        status = event.failure().status();
      }
      scheduler->failure(driver, event.failure().agent_id(), event.failure().executor_id(),
                         status);
      return;
    }
    case SchedulerEvent::kHeartbeat:
      return;
    default:
      return;
  }
}

void SchedulerDriver::Impl::fail(const std::string& message) {
  LOG(ERROR) << "Scheduler driver aborting: " << message;
  scheduler->error(driver, message);
  finish(DriverStatus::kAborted, false);
}

void SchedulerDriver::Impl::finish(DriverStatus final, bool teardown) {
  if (phase == Phase::kIdle) {
    return;
  }
  if (teardown && phase == Phase::kSubscribed) {
    SchedulerCall call;
    call.mutable_teardown();
    send(std::move(call));
  }
  phase = Phase::kIdle;
  loop.cancel(retryTimer);
  loop.cancel(heartbeatTimer);
  loop.cancel(livenessTimer);
  loop.stop();
  setStatus(final);
}

// ------------------------------------------------------------------------------------------

SchedulerDriver::SchedulerDriver(Scheduler* scheduler, FrameworkInfo framework,
                                 std::string master, SchedulerDriverOptions options)
    : impl_(std::make_unique<Impl>(this, scheduler, std::move(framework), std::move(master),
                                   options)) {}

SchedulerDriver::~SchedulerDriver() {
  if (status() == DriverStatus::kRunning) {
    abort();
  }
  if (impl_->thread.joinable()) {
    impl_->thread.join();
  }
}

DriverStatus SchedulerDriver::start() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (impl_->status != DriverStatus::kNotStarted) {
      return impl_->status;
    }
    impl_->status = DriverStatus::kRunning;
  }
  Impl* impl = impl_.get();
  impl->link = std::make_unique<ZmqDealer>(impl->context, impl->loop, "S-" + uuidString(),
                                           kDefaultMaxMessageSize);
  std::string credentialsPath = impl->options.credentials;
  if (credentialsPath.empty()) {
    const char* fromEnvironment = ::getenv("AGORA_CREDENTIALS");
    credentialsPath = fromEnvironment != nullptr ? fromEnvironment : "";
  }
  if (!credentialsPath.empty()) {
    auto credentials = loadCredentials(credentialsPath, CredentialsFor::kClient);
    if (!credentials) {
      LOG(ERROR) << "Scheduler driver: credentials: " << credentials.error();
      impl->scheduler->error(this, "credentials: " + credentials.error());
      impl->setStatus(DriverStatus::kAborted);
      return DriverStatus::kAborted;
    }
    impl->link->useCurve(*credentials);
    if (!credentials->tlsCa.empty() && !defaultHttpTls()) {
      // Finding the leader (/master/info) and the master's API go over the cluster's HTTPS.
      setDefaultHttpTls(TlsClientConfig{credentials->tlsCa, "", ""});
    }
  }
  impl->link->setHandler(
      [impl](const std::string&, Envelope&& envelope) { impl->onEvent(std::move(envelope)); });
  // A connection that dropped and came back may lead to a restarted master: subscribe again
  // at once. (The first connect is not a reconnect.)
  impl->link->setConnectionHandler([impl](bool up) {
    if (!up) {
      impl->connectionDropped = true;
    } else if (impl->connectionDropped && impl->phase == Impl::Phase::kSubscribed) {
      impl->connectionDropped = false;
      impl->phase = Impl::Phase::kSubscribing;
      impl->subscribe();
    }
  });
  auto detector = createMasterDetector(impl->loop, impl->master);
  if (!detector) {
    LOG(ERROR) << "Scheduler driver: " << detector.error();
    impl->scheduler->error(this, detector.error());
    impl->setStatus(DriverStatus::kAborted);
    return DriverStatus::kAborted;
  }
  impl->detector = std::move(detector).value();
  impl->detector->onLeaderChange([impl](const MasterInfo& leader) {
    if (impl->phase == Impl::Phase::kIdle || leader.endpoint() == impl->endpoint) {
      return;
    }
    LOG(INFO) << "Master " << leader.id() << " leads now; subscribing with it";
    if (impl->phase == Impl::Phase::kSubscribed) {
      impl->scheduler->disconnected(impl->driver);
    }
    impl->endpoint.clear();
    impl->phase = Impl::Phase::kSubscribing;  // detect() looks again, whatever the phase
    impl->detect();
  });
  impl->thread = std::thread([impl] {
    impl->phase = Impl::Phase::kDetecting;
    impl->searchingSince = impl->loop.now();
    impl->detect();
    impl->checkLiveness();
    impl->loop.run();
    // The socket belongs to this thread: close it here, after the last send.
    impl->link.reset();
  });
  return DriverStatus::kRunning;
}

DriverStatus SchedulerDriver::stop(bool failover) {
  if (status() != DriverStatus::kRunning) {
    return status();
  }
  impl_->post([impl = impl_.get(), failover] { impl->finish(DriverStatus::kStopped, !failover); });
  return DriverStatus::kStopped;
}

DriverStatus SchedulerDriver::abort() {
  if (status() != DriverStatus::kRunning) {
    return status();
  }
  impl_->post([impl = impl_.get()] { impl->finish(DriverStatus::kAborted, false); });
  return DriverStatus::kAborted;
}

DriverStatus SchedulerDriver::join() {
  std::unique_lock<std::mutex> lock(impl_->mutex);
  impl_->changed.wait(lock, [this] { return impl_->status != DriverStatus::kRunning; });
  return impl_->status;
}

DriverStatus SchedulerDriver::run() {
  start();
  return join();
}

DriverStatus SchedulerDriver::status() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->status;
}

std::string SchedulerDriver::frameworkId() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->frameworkIdCopy;
}

void SchedulerDriver::accept(const std::vector<std::string>& offerIds,
                             const std::vector<Operation>& operations, const Filters& filters) {
  SchedulerCall call;
  auto* accept = call.mutable_accept();
  for (const std::string& id : offerIds) {
    accept->add_offer_ids(id);
  }
  for (const Operation& op : operations) {
    *accept->add_operations() = op;
  }
  *accept->mutable_filters() = filters;
  impl_->postCall(std::move(call));
}

void SchedulerDriver::launch(const std::string& offerId, const std::vector<TaskInfo>& tasks,
                             const Filters& filters) {
  Operation op;
  op.set_type(Operation::LAUNCH);
  for (const TaskInfo& task : tasks) {
    *op.mutable_launch()->add_task_infos() = task;
  }
  accept({offerId}, {op}, filters);
}

void SchedulerDriver::decline(const std::string& offerId, const Filters& filters) {
  SchedulerCall call;
  call.mutable_decline()->add_offer_ids(offerId);
  *call.mutable_decline()->mutable_filters() = filters;
  impl_->postCall(std::move(call));
}

void SchedulerDriver::respondInverseOffers(const std::vector<std::string>& inverseOfferIds,
                                           bool accept) {
  SchedulerCall call;
  for (const std::string& id : inverseOfferIds) {
    call.mutable_respond_inverse_offers()->add_inverse_offer_ids(id);
  }
  call.mutable_respond_inverse_offers()->set_accept(accept);
  impl_->postCall(std::move(call));
}

void SchedulerDriver::kill(const std::string& taskId, const std::string& agentId) {
  SchedulerCall call;
  call.mutable_kill()->set_task_id(taskId);
  call.mutable_kill()->set_agent_id(agentId);
  impl_->postCall(std::move(call));
}

void SchedulerDriver::revive(const std::vector<std::string>& roles) {
  SchedulerCall call;
  for (const std::string& r : roles) {
    call.mutable_revive()->add_roles(r);
  }
  call.mutable_revive();
  impl_->postCall(std::move(call));
}

void SchedulerDriver::suppress(const std::vector<std::string>& roles) {
  SchedulerCall call;
  for (const std::string& r : roles) {
    call.mutable_suppress()->add_roles(r);
  }
  call.mutable_suppress();
  impl_->postCall(std::move(call));
}

void SchedulerDriver::acknowledge(const TaskStatus& status) {
  if (status.uuid().empty()) {
    return;  // nothing to acknowledge (for example a reconciliation answer)
  }
  SchedulerCall call;
  auto* ack = call.mutable_acknowledge();
  ack->set_agent_id(status.agent_id());
  ack->set_task_id(status.task_id());
  ack->set_uuid(status.uuid());
  impl_->postCall(std::move(call));
}

void SchedulerDriver::reconcile(const std::vector<TaskStatus>& statuses) {
  SchedulerCall call;
  auto* reconcile = call.mutable_reconcile();
  for (const TaskStatus& s : statuses) {
    auto* task = reconcile->add_tasks();
    task->set_task_id(s.task_id());
    task->set_agent_id(s.agent_id());
  }
  impl_->postCall(std::move(call));
}

void SchedulerDriver::message(const std::string& agentId, const std::string& executorId,
                              const std::string& data) {
  SchedulerCall call;
  call.mutable_message()->set_agent_id(agentId);
  call.mutable_message()->set_executor_id(executorId);
  call.mutable_message()->set_data(data);
  impl_->postCall(std::move(call));
}

}  // namespace agora
