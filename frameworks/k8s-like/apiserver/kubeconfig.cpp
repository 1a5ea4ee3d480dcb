#include "frameworks/k8s-like/apiserver/kubeconfig.hpp"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>

#include <yaml-cpp/yaml.h>

#include "common/fs.hpp"

namespace agora::kube {

namespace {

std::string base64(const std::string& data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<YAML::Node> load(const std::string& path) {
  YAML::Node config;
  if (pathExists(path)) {
    auto text = readFile(path);
    if (!text) return Error(text.error());
    try {
      config = YAML::Load(*text);
    } catch (const YAML::Exception& e) {
      return Error(path + " is not YAML: " + e.what());
    }
    if (!config.IsNull() && !config.IsMap()) return Error(path + " is not a kubeconfig");
  }
  if (config.IsNull()) config = YAML::Node(YAML::NodeType::Map);
  config["apiVersion"] = "v1";
  config["kind"] = "Config";
  for (const char* list : {"clusters", "users", "contexts"}) {
    if (!config[list] || config[list].IsNull()) config[list] = YAML::Node(YAML::NodeType::Sequence);
    if (!config[list].IsSequence()) return Error(path + ": " + list + " is not a list");
  }
  return config;
}

// The list without the entry named `name`.
YAML::Node without(const YAML::Node& list, const std::string& name) {
  YAML::Node out(YAML::NodeType::Sequence);
  for (const auto& item : list) {
    if (!item.IsMap() || !item["name"] || item["name"].as<std::string>("") != name) {
      out.push_back(item);
    }
  }
  return out;
}

Status save(const std::string& path, const YAML::Node& config) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (!dir.empty()) {
    if (Status made = makeDirectories(dir); !made) return made;
  }
  YAML::Emitter out;
  out << config;
  if (Status written = writeFileAtomic(path, std::string(out.c_str()) + "\n"); !written) {
    return written;
  }
  ::chmod(path.c_str(), 0600);
  return ok();
}

}  // namespace

Status mergeKubeconfig(const std::string& path, const KubeconfigEntry& entry) {
  auto config = load(path);
  if (!config) return Error(config.error());
  YAML::Node cluster;
  cluster["name"] = entry.name;
  cluster["cluster"]["server"] = entry.server;
  cluster["cluster"]["certificate-authority-data"] = base64(entry.caPem);
  YAML::Node user;
  user["name"] = entry.name;
  user["user"]["token"] = entry.token;
  YAML::Node context;
  context["name"] = entry.name;
  context["context"]["cluster"] = entry.name;
  context["context"]["user"] = entry.name;
  context["context"]["namespace"] = entry.ns;
  YAML::Node& c = *config;
  c["clusters"] = without(c["clusters"], entry.name);
  c["clusters"].push_back(cluster);
  c["users"] = without(c["users"], entry.name);
  c["users"].push_back(user);
  c["contexts"] = without(c["contexts"], entry.name);
  c["contexts"].push_back(context);
  c["current-context"] = entry.name;
  return save(path, c);
}

Status removeFromKubeconfig(const std::string& path, const std::string& name) {
  if (!pathExists(path)) return ok();
  auto config = load(path);
  if (!config) return Error(config.error());
  YAML::Node& c = *config;
  for (const char* list : {"clusters", "users", "contexts"}) c[list] = without(c[list], name);
  if (c["current-context"] && c["current-context"].as<std::string>("") == name) {
    c["current-context"] = "";
  }
  return save(path, c);
}

std::string defaultKubeconfigPath() {
  if (const char* env = std::getenv("KUBECONFIG"); env != nullptr && *env != '\0') {
    std::string first = env;
    return first.substr(0, first.find(':'));
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "/root") + "/.kube/config";
}

}  // namespace agora::kube
