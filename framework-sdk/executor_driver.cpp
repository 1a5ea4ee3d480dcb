#include <condition_variable>
#include <cstdlib>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

#include <glog/logging.h>

#include "agora/executor.hpp"
#include "common/curve.hpp"
#include "common/event_loop.hpp"
#include "common/ids.hpp"
#include "common/zmq_transport.hpp"

namespace agora {

void Executor::launchGroup(ExecutorDriver* driver, const TaskGroupInfo& group) {
  for (const TaskInfo& task : group.tasks()) {
    launch(driver, task);
  }
}

struct ExecutorDriver::Impl {
  explicit Impl(ExecutorDriver* driver, Executor* executor) : driver(driver), executor(executor) {}

  void subscribe();
  void onEvent(Envelope&& envelope);
  void send(ExecutorCall call);
  void checkAgent();
  void finish(DriverStatus final);
  void setStatus(DriverStatus s) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      status = s;
    }
    changed.notify_all();
  }

  ExecutorDriver* driver;
  Executor* executor;
  std::string endpoint;
  std::string containerId;
  std::string executorId;
  std::string frameworkId;
  std::string agentId;
  std::string sandbox;
  std::optional<Credentials> curve;  // the agent's executors' socket is a CURVE server
  Duration recoveryTimeout = minutes(15);

  zmq::context_t context{1};
  EventLoop loop;
  std::unique_ptr<ZmqDealer> link;
  std::thread thread;

  std::mutex mutex;
  std::condition_variable changed;
  DriverStatus status = DriverStatus::kNotStarted;  // guarded by mutex

  bool subscribed = false;
  bool everSubscribed = false;
  bool done = false;
  TimePoint lastEvent;
  TimerId subscribeTimer = 0;
  TimerId livenessTimer = 0;
  std::list<TaskStatus> unacknowledged;  // in the order sent
};

void ExecutorDriver::Impl::send(ExecutorCall call) {
  call.set_framework_id(frameworkId);
  call.set_executor_id(executorId);
  Envelope envelope;
  *envelope.mutable_executor_call() = std::move(call);
  link->send("agent", envelope);
}

void ExecutorDriver::Impl::subscribe() {
  if (done) {
    return;
  }
  ExecutorCall call;
  auto* hello = call.mutable_subscribe();
  for (const TaskStatus& s : unacknowledged) {
    *hello->add_unacknowledged_updates() = s;
  }
  send(std::move(call));
  subscribeTimer = loop.after(seconds(1), [this] {
    if (!subscribed) {
      subscribe();
    }
  });
}

void ExecutorDriver::Impl::checkAgent() {
  Duration silence = loop.now() - lastEvent;
  if (silence > recoveryTimeout) {
    LOG(ERROR) << "No word from the agent for " << formatDuration(silence)
               << "; killing the tasks and exiting";
    executor->shutdown(driver, 0);
    loop.after(seconds(1), [this] { finish(DriverStatus::kAborted); });
    return;
  }
  if (subscribed && silence > seconds(15)) {
    // The agent may have restarted: say hello again.
    subscribed = false;
    subscribe();
  }
  livenessTimer = loop.after(seconds(1), [this] { checkAgent(); });
}

void ExecutorDriver::Impl::onEvent(Envelope&& envelope) {
  if (!envelope.has_executor_event() || done) {
    return;
  }
  lastEvent = loop.now();
  const ExecutorEvent& event = envelope.executor_event();
  switch (event.event_case()) {
    case ExecutorEvent::kSubscribed: {
      bool first = !everSubscribed;
      subscribed = true;
      everSubscribed = true;
      loop.cancel(subscribeTimer);
      // Whatever the agent had not recorded goes again.
      for (const TaskStatus& s : unacknowledged) {
        ExecutorCall call;
        *call.mutable_update()->mutable_status() = s;
        send(std::move(call));
      }
      if (first) {
        const auto& s = event.subscribed();
        agentId = s.agent_info().id();
        executor->subscribed(driver, s.executor_info(), s.framework_info(), s.agent_info());
      }
      return;
    }
    case ExecutorEvent::kLaunch:
      executor->launch(driver, event.launch().task());
      return;
    case ExecutorEvent::kLaunchGroup:
      executor->launchGroup(driver, event.launch_group().task_group());
      return;
    case ExecutorEvent::kKill: {
      std::optional<double> grace;
      if (event.kill().has_grace_period_seconds()) {
        grace = event.kill().grace_period_seconds();
      }
      executor->kill(driver, event.kill().task_id(), grace);
      return;
    }
    case ExecutorEvent::kAcknowledged:
      unacknowledged.remove_if([&](const TaskStatus& s) {
        return s.uuid() == event.acknowledged().uuid();
      });
      return;
    case ExecutorEvent::kMessage:
      executor->message(driver, event.message().data());
      return;
    case ExecutorEvent::kShutdown:
      executor->shutdown(driver, event.shutdown().grace_period_seconds());
      return;
    case ExecutorEvent::kError:
      executor->error(driver, event.error().message());
      return;
    case ExecutorEvent::kReconnect:
      // The agent restarted and took this executor back.
      subscribed = false;
      loop.cancel(subscribeTimer);
      subscribe();
      return;
    case ExecutorEvent::kHeartbeat:
    case ExecutorEvent::EVENT_NOT_SET:
      return;
  }
}

void ExecutorDriver::Impl::finish(DriverStatus final) {
  if (done) {
    return;
  }
  done = true;
  loop.cancel(subscribeTimer);
  loop.cancel(livenessTimer);
  loop.stop();
  setStatus(final);
}

// ------------------------------------------------------------------------------------------

ExecutorDriver::ExecutorDriver(Executor* executor)
    : impl_(std::make_unique<Impl>(this, executor)) {
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return v == nullptr ? std::string() : std::string(v);
  };
  impl_->endpoint = env("AGORA_AGENT_ENDPOINT");
  impl_->containerId = env("AGORA_CONTAINER_ID");
  impl_->executorId = env("AGORA_EXECUTOR_ID");
  impl_->frameworkId = env("AGORA_FRAMEWORK_ID");
  impl_->agentId = env("AGORA_AGENT_ID");
  impl_->sandbox = env("AGORA_SANDBOX");
  auto timeout = parseDuration(env("AGORA_RECOVERY_TIMEOUT"));
  if (timeout) {
    impl_->recoveryTimeout = *timeout;
  }
  std::string secret = env("AGORA_EXECUTOR_CURVE_SECRET_KEY");
  if (!secret.empty()) {
    // This executor's own key pair; its tasks, and whatever else it starts, do not inherit it.
    ::unsetenv("AGORA_EXECUTOR_CURVE_SECRET_KEY");
    Credentials curve;
    curve.principal = impl_->containerId;
    curve.keys = CurveKeyPair{env("AGORA_EXECUTOR_CURVE_PUBLIC_KEY"), secret};
    curve.serverKey = env("AGORA_AGENT_CURVE_KEY");
    impl_->curve = std::move(curve);
  }
}

ExecutorDriver::~ExecutorDriver() {
  if (impl_->thread.joinable()) {
    impl_->loop.post([impl = impl_.get()] { impl->finish(DriverStatus::kAborted); });
    impl_->thread.join();
  }
}

DriverStatus ExecutorDriver::start() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (impl_->status != DriverStatus::kNotStarted) {
      return impl_->status;
    }
  }
  if (impl_->endpoint.empty() || impl_->containerId.empty() || impl_->executorId.empty() ||
      impl_->frameworkId.empty()) {
    LOG(ERROR) << "Not started by an Agora agent: AGORA_AGENT_ENDPOINT, AGORA_CONTAINER_ID, "
                  "AGORA_EXECUTOR_ID and AGORA_FRAMEWORK_ID must be set";
    impl_->setStatus(DriverStatus::kAborted);
    return DriverStatus::kAborted;
  }
  impl_->setStatus(DriverStatus::kRunning);
  Impl* impl = impl_.get();
  impl->link = std::make_unique<ZmqDealer>(impl->context, impl->loop, impl->containerId,
                                           kDefaultMaxMessageSize);
  if (impl->curve) {
    impl->link->useCurve(*impl->curve);
  }
  Status connected = impl->link->connect(impl->endpoint);
  if (!connected) {
    LOG(ERROR) << connected.error();
    impl_->setStatus(DriverStatus::kAborted);
    return DriverStatus::kAborted;
  }
  impl->link->setHandler(
      [impl](const std::string&, Envelope&& envelope) { impl->onEvent(std::move(envelope)); });
  impl->thread = std::thread([impl] {
    impl->lastEvent = impl->loop.now();
    impl->subscribe();
    impl->checkAgent();
    impl->loop.run();
    impl->link.reset();
  });
  return DriverStatus::kRunning;
}

DriverStatus ExecutorDriver::stop() {
  impl_->loop.post([impl = impl_.get()] { impl->finish(DriverStatus::kStopped); });
  return DriverStatus::kStopped;
}

DriverStatus ExecutorDriver::abort() {
  impl_->loop.post([impl = impl_.get()] { impl->finish(DriverStatus::kAborted); });
  return DriverStatus::kAborted;
}

DriverStatus ExecutorDriver::join() {
  std::unique_lock<std::mutex> lock(impl_->mutex);
  impl_->changed.wait(lock, [this] {
    return impl_->status != DriverStatus::kRunning && impl_->status != DriverStatus::kNotStarted;
  });
  return impl_->status;
}

DriverStatus ExecutorDriver::run() {
  DriverStatus s = start();
  if (s != DriverStatus::kRunning) {
    return s;
  }
  return join();
}

void ExecutorDriver::update(TaskStatus status) {
  if (status.uuid().empty()) {
    status.set_uuid(uuidBytes());
  }
  if (status.timestamp() == 0) {
    status.set_timestamp(wallTimeNow());
  }
  status.set_executor_id(impl_->executorId);
  status.set_source(TaskStatus::SOURCE_EXECUTOR);
  auto send = [impl = impl_.get(), status = std::move(status)] {
    impl->unacknowledged.push_back(status);
    if (impl->subscribed) {
      ExecutorCall call;
      *call.mutable_update()->mutable_status() = status;
      impl->send(std::move(call));
    }
  };
  // From the driver's own thread (the executor's callbacks) it is recorded at once, so that
  // unacknowledged() counts it straight away.
  if (impl_->loop.inLoopThread()) {
    send();
  } else {
    impl_->loop.post(std::move(send));
  }
}

void ExecutorDriver::message(const std::string& data) {
  impl_->loop.post([impl = impl_.get(), data] {
    ExecutorCall call;
    call.mutable_message()->set_data(data);
    impl->send(std::move(call));
  });
}

void ExecutorDriver::post(std::function<void()> fn) { impl_->loop.post(std::move(fn)); }

uint64_t ExecutorDriver::after(std::chrono::nanoseconds delay, std::function<void()> fn) {
  return impl_->loop.after(delay, std::move(fn));
}

void ExecutorDriver::cancel(uint64_t timer) { impl_->loop.cancel(timer); }

void ExecutorDriver::watchFd(int fd, std::function<void()> onReadable) {
  impl_->loop.watchFd(fd, std::move(onReadable));
}

void ExecutorDriver::unwatchFd(int fd) { impl_->loop.unwatchFd(fd); }

size_t ExecutorDriver::unacknowledged() const { return impl_->unacknowledged.size(); }

const std::string& ExecutorDriver::executorId() const { return impl_->executorId; }
const std::string& ExecutorDriver::frameworkId() const { return impl_->frameworkId; }
const std::string& ExecutorDriver::agentId() const { return impl_->agentId; }
const std::string& ExecutorDriver::sandbox() const { return impl_->sandbox; }

}  // namespace agora
