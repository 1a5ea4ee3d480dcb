// The kubelet's part of the pod scheduler: a pod as a task group, and its status from the
// tasks' status updates.

#include <cstdlib>
#include <map>
#include <regex>

#include "common/task_files.hpp"
#include "frameworks/k8s-like/apiserver/objects.hpp"
#include "frameworks/k8s-like/apiserver/tables.hpp"
#include "frameworks/k8s-like/scheduler/pod_scheduler.hpp"

namespace agora::kube {

using nlohmann::json;

namespace {

int portOf(const json& port, const json& container) {
  if (port.is_number_integer()) {
    return port.get<int>();
  }
  if (port.is_string()) {
    // A named port of the container.
    for (const auto& p : container.value("ports", json::array())) {
      if (p.value("name", "") == port.get<std::string>()) {
        return p.value("containerPort", 0);
      }
    }
    return std::atoi(port.get<std::string>().c_str());
  }
  return 0;
}

json state(const char* which, json body) { return json{{which, std::move(body)}}; }

int exitCodeOf(const std::string& message) {
  static const std::regex exited("exited with status (\\d+)");
  static const std::regex signal("killed by signal (\\d+)|signal (\\d+)");
  std::smatch m;
  if (std::regex_search(message, m, exited)) {
    return std::atoi(m[1].str().c_str());
  }
  if (std::regex_search(message, m, signal)) {
    return 128 + std::atoi((m[1].matched ? m[1] : m[2]).str().c_str());
  }
  return 1;
}

const json* previousContainer(const json& pod, const std::string& name) {
  if (!pod.contains("status") || !pod["status"].is_object() ||
      !pod["status"].contains("containerStatuses") ||
      !pod["status"]["containerStatuses"].is_array()) {
    return nullptr;
  }
  for (const auto& c : pod["status"]["containerStatuses"]) {
    if (c.value("name", "") == name) {
      return &c;
    }
  }
  return nullptr;
}

}  // namespace

std::string expandReferences(const std::string& text,
                             const std::map<std::string, std::string>& variables) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$' || i + 1 == text.size()) {
      out += text[i];
    } else if (text[i + 1] == '$') {
      out += '$';  // $$ is a literal $
      ++i;
    } else if (text[i + 1] == '(') {
      size_t close = text.find(')', i + 2);
      auto found = close == std::string::npos ? variables.end()
                                              : variables.find(text.substr(i + 2, close - i - 2));
      if (found == variables.end()) {
        out += text[i];  // left as written
      } else {
        out += found->second;
        i = close;
      }
    } else {
      out += text[i];
    }
  }
  return out;
}

std::string PodScheduler::taskId(const std::string& podUid, const std::string& container) {
  return podUid + "." + container;
}

std::optional<HealthCheck> probeToCheck(const json& probe, const std::string& podIP,
                                        const json& container) {
  if (!probe.is_object()) {
    return std::nullopt;
  }
  HealthCheck check;
  if (probe.contains("exec")) {
    check.set_type(HealthCheck::COMMAND);
    CommandInfo* command = check.mutable_command();
    // The probe's argv, found on the PATH as the container would find it.
    command->set_shell(false);
    command->set_value("/bin/sh");
    for (const char* arg : {"sh", "-c", "exec \"$@\"", "sh"}) {
      command->add_arguments(arg);
    }
    for (const auto& arg : probe["exec"].value("command", json::array())) {
      command->add_arguments(arg.get<std::string>());
    }
  } else if (probe.contains("httpGet")) {
    check.set_type(HealthCheck::HTTP);
    const json& http = probe["httpGet"];
    check.mutable_http()->set_port(static_cast<uint32_t>(portOf(http.value("port", json()), container)));
    check.mutable_http()->set_path(http.value("path", "/"));
    check.mutable_http()->set_host(http.value("host", podIP));
    std::string scheme = http.value("scheme", "HTTP");
    for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    check.mutable_http()->set_scheme(scheme);
  } else if (probe.contains("tcpSocket")) {
    check.set_type(HealthCheck::TCP);
    check.mutable_tcp()->set_port(
        static_cast<uint32_t>(portOf(probe["tcpSocket"].value("port", json()), container)));
    check.mutable_tcp()->set_host(probe["tcpSocket"].value("host", podIP));
  } else {
    return std::nullopt;
  }
  check.set_delay_seconds(probe.value("initialDelaySeconds", 0));
  check.set_interval_seconds(probe.value("periodSeconds", 10));
  check.set_timeout_seconds(probe.value("timeoutSeconds", 1));
  check.set_consecutive_failures(static_cast<uint32_t>(probe.value("failureThreshold", 3)));
  return check;
}

Result<std::map<std::string, std::string>> PodScheduler::configData(const std::string& ns,
                                                                  bool secret,
                                                                  const std::string& name,
                                                                  bool optional) const {
  const ResourceType& type = *findResource("", "v1", secret ? "secrets" : "configmaps");
  ApiOutcome got = api_->get(type, ns, name);
  if (!got.ok()) {
    if (optional) return std::map<std::string, std::string>{};
    return Error(std::string(secret ? "secret" : "configmap") + " \"" + name + "\" not found");
  }
  return decodedData(got.object, secret);
}

Result<std::vector<ContainerInfo::File>> volumeFiles(const json& pod, const json& container,
                                                     const ConfigLookup& lookup) {
  std::string ns = pod["metadata"].value("namespace", "");
  std::map<std::string, json> volumes;
  for (const json& v : pod["spec"].value("volumes", json::array())) {
    if (v.is_object()) volumes[v.value("name", "")] = v;
  }
  std::vector<ContainerInfo::File> files;
  for (const json& m : container.value("volumeMounts", json::array())) {
    if (!m.is_object()) continue;
    auto found = volumes.find(m.value("name", ""));
    if (found == volumes.end()) {
      return Error("volumeMount " + m.value("name", "") + ": no volume of that name");
    }
    const json& volume = found->second;
    bool secret = volume.contains("secret");
    if (!secret && !volume.contains("configMap")) continue;  // other kinds: not files of ours
    const json from = volume[secret ? "secret" : "configMap"];
    std::string name = from.value(secret ? "secretName" : "name", "");
    bool optional = from.value("optional", false);
    auto data = lookup(ns, secret, name, optional);
    if (!data) return Error(data.error());
    // A Secret's files are for the container's user alone unless the pod says otherwise
    // (Kubernetes defaults both to 0644).
    int defaultMode = from.value("defaultMode", secret ? 0400 : 0644);
    // key -> (path under the mount, mode): the items, or every key.
    std::vector<std::tuple<std::string, std::string, int>> wanted;
    if (from.contains("items") && from["items"].is_array()) {
      for (const json& item : from["items"]) {
        std::string key = item.value("key", "");
        if (!data->count(key)) {
          if (optional) continue;
          return Error("couldn't find key " + key + " in " +
                       (secret ? "Secret " : "ConfigMap ") + ns + "/" + name);
        }
        wanted.emplace_back(key, item.value("path", key), item.value("mode", defaultMode));
      }
    } else {
      for (const auto& [key, value] : *data) wanted.emplace_back(key, key, defaultMode);
    }
    std::string mountPath = m.value("mountPath", "");
    std::string subPath = m.value("subPath", "");
    while (mountPath.size() > 1 && mountPath.back() == '/') mountPath.pop_back();
    for (const auto& [key, path, mode] : wanted) {
      if (!subPath.empty() && path != subPath) continue;
      ContainerInfo::File file;
      file.set_path(subPath.empty() ? mountPath + "/" + path : mountPath);
      file.set_data(data->at(key));
      file.set_mode(static_cast<uint32_t>(mode));
      files.push_back(std::move(file));
    }
  }
  return files;
}

Result<std::vector<std::pair<std::string, std::string>>> PodScheduler::containerEnvironment(
    const json& pod, const json& container) const {
  const json& meta = pod["metadata"];
  std::string ns = meta.value("namespace", "");
  // Later entries win, as in Kubernetes: the services' variables, then envFrom, then env.
  std::vector<std::pair<std::string, std::string>> out;
  auto set = [&](const std::string& key, const std::string& value) {
    for (auto& [k, v] : out) {
      if (k == key) {
        v = value;
        return;
      }
    }
    out.emplace_back(key, value);
  };
  auto source = [&](bool secret, const std::string& name, bool optional) {
    return configData(ns, secret, name, optional);
  };
  if (pod["spec"].value("enableServiceLinks", true)) {
    for (const json& svc : api_->list(*findResource("", "v1", "services"), ns)) {
      std::string ip = svc["spec"].value("clusterIP", "");
      const json ports = svc["spec"].value("ports", json::array());
      if (ip.empty() || ip == "None" || ports.empty()) continue;
      std::string prefix = svc["metadata"].value("name", "");
      for (char& ch : prefix) ch = ch == '-' ? '_' : static_cast<char>(std::toupper(ch));
      set(prefix + "_SERVICE_HOST", ip);
      set(prefix + "_SERVICE_PORT", std::to_string(ports[0].value("port", 0)));
    }
  }
  for (const auto& from : container.value("envFrom", json::array())) {
    bool secret = from.contains("secretRef");
    const json ref = from.value(secret ? "secretRef" : "configMapRef", json::object());
    auto data = source(secret, ref.value("name", ""), ref.value("optional", false));
    if (!data) return Error(data.error());
    for (const auto& [k, v] : *data) set(from.value("prefix", "") + k, v);
  }
  for (const auto& e : container.value("env", json::array())) {
    std::string key = e.value("name", "");
    if (!e.contains("valueFrom")) {
      set(key, e.value("value", ""));
      continue;
    }
    const json from = e["valueFrom"];
    if (from.contains("configMapKeyRef") || from.contains("secretKeyRef")) {
      bool secret = from.contains("secretKeyRef");
      const json ref = from[secret ? "secretKeyRef" : "configMapKeyRef"];
      bool optional = ref.value("optional", false);
      auto data = source(secret, ref.value("name", ""), optional);
      if (!data) return Error(data.error());
      auto it = data->find(ref.value("key", ""));
      if (it == data->end()) {
        if (optional) continue;
        return Error("couldn't find key " + ref.value("key", "") + " in " +
                     (secret ? "Secret " : "ConfigMap ") + ns + "/" + ref.value("name", ""));
      }
      set(key, it->second);
    } else if (from.contains("fieldRef")) {
      std::string path = from["fieldRef"].value("fieldPath", "");
      std::string value = path == "metadata.name"        ? meta.value("name", "")
                          : path == "metadata.namespace" ? ns
                          : path == "metadata.uid"       ? meta.value("uid", "")
                          : path == "spec.nodeName"      ? pod["spec"].value("nodeName", "")
                          : path == "status.hostIP"
                              ? pod.value("status", json::object()).value("hostIP", "")
                          : path == "status.podIP"
                              ? pod.value("status", json::object()).value("podIP", "")
                              : "";
      set(key, value);
    }
  }
  return out;
}

std::optional<std::string> PodScheduler::resolvConf(const json& pod) const {
  const json spec = pod.value("spec", json::object());
  std::string policy = spec.value("dnsPolicy", "ClusterFirst");
  if (policy == "ClusterFirst" && spec.value("hostNetwork", false)) {
    policy = "Default";  // as in Kubernetes: host-network pods ask for the cluster's explicitly
  }
  if (policy == "Default" || (policy != "None" && options_.dnsServer.empty())) {
    return std::nullopt;  // the host's
  }
  std::vector<std::string> nameservers;
  std::vector<std::string> searches;
  std::vector<std::string> dnsOptions;
  if (policy != "None") {
    const std::string& domain = options_.clusterDomain;
    nameservers.push_back(options_.dnsServer);
    searches = {pod["metadata"].value("namespace", "default") + ".svc." + domain, "svc." + domain,
                domain};
    dnsOptions.push_back("ndots:5");
  }
  const json config = spec.value("dnsConfig", json::object());
  for (const auto& n : config.value("nameservers", json::array())) {
    if (n.is_string()) nameservers.push_back(n.get<std::string>());
  }
  for (const auto& n : config.value("searches", json::array())) {
    if (n.is_string()) searches.push_back(n.get<std::string>());
  }
  for (const auto& o : config.value("options", json::array())) {
    if (!o.is_object() || !o.contains("name") || !o["name"].is_string()) continue;
    std::string option = o["name"].get<std::string>();
    if (o.contains("value") && o["value"].is_string()) option += ":" + o["value"].get<std::string>();
    dnsOptions.push_back(option);
  }
  std::string out;
  if (!searches.empty()) {
    out += "search";
    for (const auto& s : searches) out += " " + s;
    out += "\n";
  }
  for (const auto& n : nameservers) out += "nameserver " + n + "\n";
  if (!dnsOptions.empty()) {
    out += "options";
    for (const auto& o : dnsOptions) out += " " + o;
    out += "\n";
  }
  return out;
}

Result<Operation> PodScheduler::groupFor(const json& pod, const std::string& agentId) const {
  const json& meta = pod["metadata"];
  const json& spec = pod["spec"];
  std::string uid = meta.value("uid", "");
  Operation op;
  op.set_type(Operation::LAUNCH_GROUP);
  ExecutorInfo* executor = op.mutable_launch_group()->mutable_executor();
  executor->set_type(ExecutorInfo::DEFAULT);
  executor->set_executor_id("pod." + uid);
  executor->set_name("pod " + meta.value("namespace", "") + "/" + meta.value("name", ""));
  std::string policy = spec.value("restartPolicy", "Always");
  const std::string podIP = pod.value("status", json::object()).value("podIP", "");
  for (const auto& c : spec.value("containers", json::array())) {
    TaskInfo* task = op.mutable_launch_group()->mutable_task_group()->add_tasks();
    std::string name = c.value("name", "");
    task->set_name(meta.value("name", "") + "/" + name);
    task->set_task_id(taskId(uid, name));
    task->set_agent_id(agentId);
    json requests = c.value("resources", json::object()).value("requests", json::object());
    json limits = c.value("resources", json::object()).value("limits", json::object());
    // A task's resources are both what it is placed by and what its cgroups hold it to: the
    // larger of request and limit, so that no container is held below its limit.
    auto amount = [&](const char* resource, double fallback) {
      double found = -1;
      for (const json* from : {&requests, &limits}) {
        if (from->contains(resource)) {
          auto q = parseQuantity((*from)[resource]);
          if (q) found = std::max(found, *q);
        }
      }
      return found < 0 ? fallback : found;
    };
    double cpus = std::max(0.01, amount("cpu", options_.defaultCpus));
    double mem = std::max(4.0, std::ceil(amount("memory", options_.defaultMemMiB * 1048576.0) /
                                         1048576.0));
    std::string resources = "cpus:" + std::to_string(cpus) + ";mem:" + std::to_string(mem);
    if (limits.contains("nvidia.com/gpu")) {
      auto gpus = parseQuantity(limits["nvidia.com/gpu"]);
      if (gpus && *gpus > 0) {
        resources += ";gpus:" + std::to_string(static_cast<int>(*gpus));
      }
    }
    auto parsed = Resources::parse(resources);
    if (!parsed) {
      return Error("container " + name + ": " + parsed.error());
    }
    parsed->copyTo(task->mutable_resources());
    auto environment = containerEnvironment(pod, c);
    if (!environment) {
      return Error("container " + name + ": " + environment.error());
    }
    if (auto resolv = resolvConf(pod)) {
      auto* file = task->mutable_container()->add_files();
      file->set_path("/etc/resolv.conf");
      file->set_data(*resolv);
    }
    // ConfigMap and Secret volumes: their keys as files where the container mounts them.
    auto files = volumeFiles(pod, c, [this](const std::string& ns, bool secret,
                                            const std::string& object, bool optional) {
      return configData(ns, secret, object, optional);
    });
    if (!files) {
      return Error("container " + name + ": " + files.error());
    }
    for (auto& f : *files) *task->mutable_container()->add_files() = std::move(f);
    std::map<std::string, std::string> variables(environment->begin(), environment->end());
    std::vector<std::string> argv;
    for (const auto& a : c.value("command", json::array())) {
      argv.push_back(expandReferences(a.get<std::string>(), variables));
    }
    std::vector<std::string> args;
    for (const auto& a : c.value("args", json::array())) {
      args.push_back(expandReferences(a.get<std::string>(), variables));
    }
    std::string image = c.value("image", "");
    CommandInfo* command = task->mutable_command();
    command->set_shell(false);
    command->set_merge_output(true);  // one log, as kubectl logs shows it
    if (c.value("stdin", false)) {
      Label* stdinLabel = task->add_labels();  // a pipe kubectl attach -i writes to
      stdinLabel->set_key(kStdinLabel);
      stdinLabel->set_value(c.value("stdinOnce", false) ? "once" : "true");
    }
    if (image == options_.hostImage) {
      argv.insert(argv.end(), args.begin(), args.end());
      if (argv.empty()) {
        return Error("container " + name + " runs image " + options_.hostImage +
                     " (the host's own filesystem), which has no entrypoint: give it a command");
      }
      command->set_value(argv[0]);
      for (const auto& a : argv) command->add_arguments(a);
    } else {
      task->mutable_container()->set_image(image);
      if (!c.value("workingDir", "").empty()) {
        task->mutable_container()->set_working_dir(c.value("workingDir", ""));
      }
      if (!argv.empty()) {
        argv.insert(argv.end(), args.begin(), args.end());
        command->set_value(argv[0]);
        for (const auto& a : argv) command->add_arguments(a);
      } else {
        for (const auto& a : args) command->add_arguments(a);
      }
    }
    for (const auto& [key, value] : *environment) {
      auto* env = command->add_environment();
      env->set_name(key);
      env->set_value(value);
    }
    RestartPolicy* restart = task->mutable_restart_policy();
    restart->set_mode(policy == "Always"      ? RestartPolicy::ALWAYS
                      : policy == "OnFailure" ? RestartPolicy::ON_FAILURE
                                              : RestartPolicy::NEVER);
    restart->set_backoff_seconds(10);
    restart->set_max_backoff_seconds(300);
    if (auto liveness = probeToCheck(c.value("livenessProbe", json()), podIP, c)) {
      // A startup probe holds the liveness probe off for as long as it may take.
      if (auto startup = probeToCheck(c.value("startupProbe", json()), podIP, c)) {
        liveness->set_grace_period_seconds(startup->interval_seconds() *
                                           startup->consecutive_failures());
      }
      *task->mutable_health_check() = *liveness;
    }
    if (auto readiness = probeToCheck(c.value("readinessProbe", json()), podIP, c)) {
      *task->mutable_readiness_check() = *readiness;
    }
    task->set_kill_grace_period_seconds(
        static_cast<double>(spec.value("terminationGracePeriodSeconds", 30)));
    auto* label = task->add_labels();
    label->set_key("pod");
    label->set_value(meta.value("namespace", "") + "/" + meta.value("name", ""));
  }
  return op;
}

json podStatus(const json& pod, const std::map<std::string, TaskStatus>& tasks, double now) {
  const json& meta = pod["metadata"];
  const json& spec = pod["spec"];
  std::string uid = meta.value("uid", "");
  json previous = pod.value("status", json::object());
  std::string stamp = rfc3339(now);
  json containers = json::array();
  size_t running = 0, ready = 0, waiting = 0, succeeded = 0, failed = 0, total = 0;
  for (const auto& c : spec.value("containers", json::array())) {
    ++total;
    std::string name = c.value("name", "");
    const json* before = previousContainer(pod, name);
    json cs = {{"name", name},
               {"image", c.value("image", "")},
               {"imageID", ""},
               {"containerID", "agora://" + PodScheduler::taskId(uid, name)},
               {"restartCount", 0},
               {"started", false},
               {"ready", false}};
    // What the container was in before: {"waiting": {...}}, {"running": {...}}, ...
    const json beforeState = before ? before->value("state", json::object()) : json::object();
    auto was = [&](const char* which, const char* field) -> std::string {
      if (!beforeState.contains(which) || !beforeState[which].is_object()) return "";
      return beforeState[which].value(field, "");
    };
    if (before && before->contains("lastState")) {
      cs["lastState"] = (*before)["lastState"];
    }
    auto it = tasks.find(PodScheduler::taskId(uid, name));
    if (it == tasks.end()) {
      cs["state"] = state("waiting", {{"reason", "ContainerCreating"}});
      ++waiting;
      containers.push_back(cs);
      continue;
    }
    const TaskStatus& t = it->second;
    cs["restartCount"] = t.restart_count();
    const std::string& message = t.message();
    switch (t.state()) {
      case TASK_STAGING:
      case TASK_STARTING:
        cs["state"] = state("waiting", {{"reason", "ContainerCreating"}});
        ++waiting;
        break;
      case TASK_RUNNING:
      case TASK_KILLING: {
        size_t restarting = message.find("; restarting in ");
        if (restarting != std::string::npos) {
          std::string backoff = message.substr(restarting + 16);
          int code = exitCodeOf(message);
          cs["state"] = state("waiting",
                              {{"reason", "CrashLoopBackOff"},
                               {"message", "back-off " + backoff + " restarting failed container=" +
                                               name + " pod=" + meta.value("name", "")}});
          std::string started = was("running", "startedAt").empty()
                                    ? stamp : was("running", "startedAt");
          if (!(was("waiting", "reason") == "CrashLoopBackOff" &&
                before->value("restartCount", 0) == static_cast<int>(t.restart_count()))) {
            cs["lastState"] = state("terminated", {{"exitCode", code},
                                                   {"reason", code == 0 ? "Completed" : "Error"},
                                                   {"message", message.substr(0, restarting)},
                                                   {"startedAt", started},
                                                   {"finishedAt", stamp}});
          }
          ++running;  // a restarting container keeps its pod Running, as Kubernetes shows it
          break;
        }
        std::string startedAt =
            !was("running", "startedAt").empty() &&
                    before->value("restartCount", 0) == static_cast<int>(t.restart_count())
                ? was("running", "startedAt") : stamp;
        cs["state"] = state("running", {{"startedAt", startedAt}});
        cs["started"] = true;
        bool isReady = t.has_ready() ? t.ready() : !c.contains("readinessProbe");
        if (t.has_healthy() && !t.healthy() && !t.has_ready()) {
          isReady = false;
        }
        cs["ready"] = isReady;
        ready += isReady ? 1 : 0;
        ++running;
        break;
      }
      case TASK_FINISHED:
        cs["state"] = state("terminated", {{"exitCode", 0}, {"reason", "Completed"},
                                           {"finishedAt", stamp}});
        ++succeeded;
        break;
      case TASK_FAILED:
      case TASK_ERROR:
        if (message.find("no image '") != std::string::npos) {
          bool pulledBefore = was("waiting", "reason") == "ErrImagePull" ||
                              was("waiting", "reason") == "ImagePullBackOff";
          cs["state"] = state("waiting", {{"reason", pulledBefore ? "ImagePullBackOff"
                                                                  : "ErrImagePull"},
                                          {"message", message}});
          ++waiting;
        } else {
          bool oom = t.reason() == TaskStatus::REASON_CONTAINER_LIMITATION_MEMORY;
          cs["state"] = state("terminated", {{"exitCode", oom ? 137 : exitCodeOf(message)},
                                             {"reason", oom ? "OOMKilled" : "Error"},
                                             {"message", message},
                                             {"finishedAt", stamp}});
          ++failed;
        }
        break;
      default:  // killed, lost, gone, dropped
        cs["state"] = state("terminated", {{"exitCode", 137}, {"reason", "Error"},
                                           {"message", message}, {"finishedAt", stamp}});
        ++failed;
        break;
    }
    containers.push_back(cs);
  }
  json status = previous;
  status["containerStatuses"] = containers;
  std::string policy = spec.value("restartPolicy", "Always");
  std::string phase = "Pending";
  if (succeeded == total && total > 0) {
    phase = "Succeeded";
  } else if (succeeded + failed == total && total > 0) {
    phase = "Failed";
  } else if (running > 0 || (succeeded + failed > 0 && waiting == 0)) {
    phase = "Running";
  }
  status["phase"] = phase;
  status.erase("reason");
  status.erase("message");
  bool allReady = ready == total && total > 0;
  json conditions = previous.value("conditions", json::array());
  auto set = [&](const std::string& type, bool value) {
    std::string v = value ? "True" : "False";
    for (auto& c : conditions) {
      if (c.value("type", "") == type) {
        if (c.value("status", "") != v) {
          c["status"] = v;
          c["lastTransitionTime"] = stamp;
        }
        c.erase("reason");
        c.erase("message");
        return;
      }
    }
    conditions.push_back({{"type", type}, {"status", v}, {"lastProbeTime", nullptr},
                          {"lastTransitionTime", stamp}});
  };
  set("PodScheduled", true);
  set("Initialized", true);
  set("ContainersReady", allReady && phase == "Running");
  set("Ready", allReady && phase == "Running");
  status["conditions"] = conditions;
  if (!status.contains("startTime")) {
    status["startTime"] = stamp;
  }
  return status;
}

}  // namespace agora::kube
