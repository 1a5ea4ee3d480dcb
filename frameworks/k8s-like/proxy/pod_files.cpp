#include "frameworks/k8s-like/proxy/pod_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <map>

#include <glog/logging.h>

#include "common/fs.hpp"
#include "common/task_files.hpp"
#include "frameworks/k8s-like/apiserver/objects.hpp"
#include "frameworks/k8s-like/scheduler/pod_scheduler.hpp"

namespace agora::kube {

using nlohmann::json;

namespace {

using Data = std::map<std::string, std::string>;

std::map<std::string, Data> byKey(const json& items, bool secret) {
  std::map<std::string, Data> out;
  if (!items.is_array()) return out;
  for (const json& o : items) {
    if (!o.is_object() || !o.contains("metadata")) continue;
    const json meta = o["metadata"];
    out[meta.value("namespace", "") + "/" + meta.value("name", "")] = decodedData(o, secret);
  }
  return out;
}

// Rewrites `path` in place (the same file, so its mounts follow) when it holds something else.
bool rewrite(const std::string& path, const std::string& content) {
  auto current = readFile(path);
  if (!current || *current == content) return false;  // not there (not ours now), or the same
  int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return false;
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return done == content.size();
}

}  // namespace

int refreshPodFiles(const json& pods, const json& configMaps, const json& secrets,
                    const std::string& nodeName) {
  auto maps = byKey(configMaps, false);
  auto secretData = byKey(secrets, true);
  ConfigLookup lookup = [&](const std::string& ns, bool secret, const std::string& name,
                            bool optional) -> Result<Data> {
    const auto& from = secret ? secretData : maps;
    auto it = from.find(ns + "/" + name);
    if (it == from.end()) {
      if (optional) return Data{};
      return Error(name + " not found");
    }
    return it->second;
  };
  int changed = 0;
  if (!pods.is_array()) return 0;
  for (const json& pod : pods) {
    try {
      if (!pod.is_object() || pod["spec"].value("nodeName", "") != nodeName) continue;
      std::string uid = pod["metadata"].value("uid", "");
      for (const json& c : pod["spec"].value("containers", json::array())) {
        if (!c.contains("volumeMounts")) continue;
        auto files = volumeFiles(pod, c, lookup);
        if (!files) continue;  // what it needs is gone: it keeps what it had
        std::string task = PodScheduler::taskId(uid, c.value("name", ""));
        for (const auto& f : *files) {
          if (rewrite(taskFilePath(task, f.path()), f.data())) {
            ++changed;
            VLOG(1) << "Updated " << f.path() << " of " << task;
          }
        }
      }
    } catch (const json::exception&) {
      continue;
    }
  }
  return changed;
}

}  // namespace agora::kube
