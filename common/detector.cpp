#include "common/detector.hpp"

#include <google/protobuf/util/json_util.h>

#include "common/http.hpp"

namespace agora {

Result<MasterInfo> fetchMasterInfo(const std::string& address, Duration timeout) {
  auto response = httpGet(address, "/master/info", timeout);
  if (!response) {
    return Error(response.error());
  }
  if (response->status != 200) {
    return Error("master at " + address + " answered /master/info with HTTP " +
                 std::to_string(response->status));
  }
  MasterInfo info;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto status = google::protobuf::util::JsonStringToMessage(response->body, &info, options);
  if (!status.ok()) {
    return Error("bad /master/info from " + address + ": " + status.ToString());
  }
  if (info.endpoint().empty()) {
    return Error("master at " + address + " did not say where its protocol endpoint is");
  }
  return info;
}

StandaloneDetector::StandaloneDetector(Loop& loop, std::string address)
    : loop_(loop), address_(std::move(address)), worker_([this] { work(); }) {}

StandaloneDetector::~StandaloneDetector() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  worker_.join();
}

void StandaloneDetector::detect(std::function<void(Result<MasterInfo>)> callback) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_.push_back(std::move(callback));
  }
  wake_.notify_all();
}

void StandaloneDetector::work() {
  while (true) {
    std::deque<std::function<void(Result<MasterInfo>)>> batch;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !requests_.empty(); });
      if (stopping_) {
        return;
      }
      batch.swap(requests_);
    }
    Result<MasterInfo> info = fetchMasterInfo(address_, seconds(2));
    for (auto& callback : batch) {
      loop_.post([callback = std::move(callback), info] { callback(info); });
    }
  }
}

}  // namespace agora
