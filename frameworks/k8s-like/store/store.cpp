#include "frameworks/k8s-like/store/store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>

#include "common/crc32.hpp"
#include "common/fs.hpp"

namespace agora::kube {

using nlohmann::json;

namespace {

const char* kLog = "/log";
const char* kSnapshot = "/snapshot.json";

void putU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t getU32(const std::string& in, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    v |= static_cast<uint32_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  }
  return v;
}

// Appends one framed record ([u32 length][u32 crc32][body]) to the open log, and syncs it
// unless `sync` is false.
Status appendRecord(int fd, const std::string& path, const std::string& body, bool sync) {
  std::string frame;
  putU32(frame, static_cast<uint32_t>(body.size()));
  putU32(frame, crc32(body));
  frame += body;
  size_t written = 0;
  while (written < frame.size()) {
    ssize_t n = ::write(fd, frame.data() + written, frame.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return Error("cannot append to " + path + ": " + std::strerror(errno));
    }
    written += static_cast<size_t>(n);
  }
  if (sync && ::fdatasync(fd) != 0) {
    return Error("cannot sync " + path + ": " + std::strerror(errno));
  }
  return ok();
}

WatchEvent::Type typeOf(const std::string& op) {
  return op == "add" ? WatchEvent::kAdded : op == "del" ? WatchEvent::kDeleted
                                                        : WatchEvent::kModified;
}

const char* opOf(WatchEvent::Type type) {
  return type == WatchEvent::kAdded ? "add" : type == WatchEvent::kDeleted ? "del" : "mod";
}

}  // namespace

Result<std::unique_ptr<FileStore>> FileStore::open(const std::string& directory,
                                                   Options options) {
  if (Status made = makeDirectories(directory); !made) return Error(made.error());
  std::unique_ptr<FileStore> store(new FileStore(directory, options));
  if (Status loaded = store->load(); !loaded) return Error(loaded.error());
  return store;
}

Status FileStore::load() {
  if (pathExists(directory_ + kSnapshot)) {
    auto text = readFile(directory_ + kSnapshot);
    auto j = json::parse(text.value_or(""), nullptr, false);
    if (!text || j.is_discarded() || !j.contains("version") || !j.contains("objects")) {
      return Error(directory_ + kSnapshot + " is corrupt");
    }
    version_ = j["version"].get<uint64_t>();
    for (const json& o : j["objects"]) {
      Object object{o.at("key").get<std::string>(), o.at("value"), o.at("version").get<uint64_t>()};
      objects_[object.key] = std::move(object);
    }
  }
  historyStart_ = version_;
  if (!pathExists(directory_ + kLog)) return ok();
  auto data = readFile(directory_ + kLog);
  if (!data) return Error(data.error());
  size_t at = 0;
  while (at + 8 <= data->size()) {
    uint32_t length = getU32(*data, at);
    uint32_t crc = getU32(*data, at + 4);
    if (data->size() - at - 8 < length) break;  // a torn last record: the change never happened
    std::string body = data->substr(at + 8, length);
    bool last = at + 8 + length == data->size();
    auto record = json::parse(body, nullptr, false);
    if (crc32(body) != crc || record.is_discarded()) {
      if (last) break;
      return Error(directory_ + kLog + " is corrupt at byte " + std::to_string(at));
    }
    at += 8 + length;
    uint64_t version = record.value("version", uint64_t{0});
    if (version <= version_) continue;  // already in the snapshot
    version_ = version;
    ++sinceSnapshot_;
    WatchEvent event;
    event.type = typeOf(record.value("op", ""));
    event.object = {record.value("key", ""), record.value("value", json()), version};
    if (event.type == WatchEvent::kDeleted) {
      objects_.erase(event.object.key);
    } else {
      objects_[event.object.key] = event.object;
    }
    history_.push_back(event);
    while (history_.size() > historyLimit_) {
      historyStart_ = history_.front().object.version;
      history_.pop_front();
    }
  }
  if (at < data->size() &&
      ::truncate((directory_ + kLog).c_str(), static_cast<off_t>(at)) != 0) {
    // The torn end goes, so that the next change is not appended after it.
    return Error("cannot cut the torn end of " + directory_ + kLog + ": " + std::strerror(errno));
  }
  return ok();
}

Status FileStore::snapshot() {
  json objects = json::array();
  for (const auto& [key, object] : objects_) {
    objects.push_back({{"key", key}, {"value", object.value}, {"version", object.version}});
  }
  if (Status written = writeFileAtomic(directory_ + kSnapshot,
                                       json{{"version", version_}, {"objects", objects}}.dump());
      !written) {
    return written;
  }
  // Everything in the log is in the snapshot now.
  closeLog();
  unsynced_ = false;
  if (::unlink((directory_ + kLog).c_str()) != 0 && errno != ENOENT) {
    return Error("cannot start a new log: " + std::string(std::strerror(errno)));
  }
  sinceSnapshot_ = 0;
  return ok();
}

FileStore::~FileStore() {
  (void)releaseSync();
  closeLog();
}

void FileStore::closeLog() {
  if (logFd_ >= 0) {
    ::close(logFd_);
    logFd_ = -1;
  }
}

Status FileStore::releaseSync() {
  if (holds_ > 0) {
    --holds_;
  }
  if (holds_ > 0 || !unsynced_ || logFd_ < 0) {
    return ok();
  }
  unsynced_ = false;
  if (::fdatasync(logFd_) != 0) {
    return Error("cannot sync " + directory_ + kLog + ": " + std::strerror(errno));
  }
  return ok();
}

Outcome Store::get(const std::string& key) const {
  auto it = objects_.find(key);
  if (it == objects_.end()) return {StoreCode::kNotFound, key + " not found", {}};
  return {StoreCode::kOk, "", it->second};
}

std::vector<Object> Store::list(const std::string& prefix, uint64_t* version) const {
  std::vector<Object> out;
  for (auto it = objects_.lower_bound(prefix);
       it != objects_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    out.push_back(it->second);
  }
  if (version != nullptr) *version = version_;
  return out;
}

Result<uint64_t> FileStore::persist(WatchEvent::Type type, const std::string& key,
                                    const json& value) {
  uint64_t version = version_ + 1;
  json record = {{"version", version}, {"op", opOf(type)}, {"key", key}};
  if (type != WatchEvent::kDeleted) record["value"] = value;
  if (logFd_ < 0) {
    logFd_ = ::open((directory_ + kLog).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logFd_ < 0) {
      return Error("cannot open " + directory_ + kLog + ": " + std::strerror(errno));
    }
  }
  if (Status logged = appendRecord(logFd_, directory_ + kLog, record.dump(), holds_ == 0);
      !logged) {
    // The log may end in a torn record now: start it afresh from a snapshot of what is known.
    closeLog();
    (void)snapshot();
    return Error(logged.error());
  }
  unsynced_ = unsynced_ || holds_ > 0;
  return version;
}

void FileStore::changed() {
  // A snapshot writes every object: taken no more often than the store's size in changes, so
  // that its cost per change stays constant as the store grows.
  if (++sinceSnapshot_ >= std::max<uint64_t>(options_.snapshotEvery, objects_.size())) {
    (void)snapshot();  // the log still holds everything if this fails
  }
}

void Store::remember(const WatchEvent& event) {
  history_.push_back(event);
  while (history_.size() > historyLimit_) {
    historyStart_ = history_.front().object.version;
    history_.pop_front();
  }
}

Outcome Store::apply(WatchEvent::Type type, const std::string& key, json value) {
  auto version = persist(type, key, value);
  if (!version) {
    return {StoreCode::kInternal, version.error(), {}};
  }
  version_ = *version;
  WatchEvent event;
  event.type = type;
  if (type == WatchEvent::kDeleted) {
    event.object = objects_[key];
    event.object.version = version_;
    objects_.erase(key);
  } else {
    event.object = {key, std::move(value), version_};
    objects_[key] = event.object;
  }
  remember(event);
  for (const auto& [id, watch] : watches_) {
    if (key.compare(0, watch.prefix.size(), watch.prefix) == 0) watch.watcher(event);
  }
  changed();
  return {StoreCode::kOk, "", event.object};
}

Outcome Store::create(const std::string& key, json value) {
  if (objects_.count(key) > 0) return {StoreCode::kAlreadyExists, key + " already exists", {}};
  return apply(WatchEvent::kAdded, key, std::move(value));
}

Outcome Store::update(const std::string& key, json value, uint64_t expected) {
  auto it = objects_.find(key);
  if (it == objects_.end()) return {StoreCode::kNotFound, key + " not found", {}};
  if (expected != 0 && it->second.version != expected) {
    return {StoreCode::kConflict,
            key + " has changed (it is at version " + std::to_string(it->second.version) +
                ", not " + std::to_string(expected) + ")",
            it->second};
  }
  return apply(WatchEvent::kModified, key, std::move(value));
}

Outcome Store::remove(const std::string& key, uint64_t expected) {
  auto it = objects_.find(key);
  if (it == objects_.end()) return {StoreCode::kNotFound, key + " not found", {}};
  if (expected != 0 && it->second.version != expected) {
    return {StoreCode::kConflict, key + " has changed", it->second};
  }
  return apply(WatchEvent::kDeleted, key, json());
}

Outcome Store::watch(const std::string& prefix, uint64_t from, Watcher watcher) {
  if (from != 0 && from < historyStart_) {
    return {StoreCode::kGone,
            "too old resource version: " + std::to_string(from) + " (" +
                std::to_string(historyStart_) + ")",
            {}};
  }
  if (from != 0) {
    for (const WatchEvent& event : history_) {
      if (event.object.version > from &&
          event.object.key.compare(0, prefix.size(), prefix) == 0) {
        watcher(event);
      }
    }
  }
  uint64_t id = nextWatch_++;
  watches_[id] = {prefix, std::move(watcher)};
  Outcome out;
  out.object.version = id;
  return out;
}

void Store::cancel(uint64_t watch) { watches_.erase(watch); }

}  // namespace agora::kube
