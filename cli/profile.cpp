#include "cli/profile.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "common/fs.hpp"
#include "common/http_tokens.hpp"
#include "common/tls.hpp"

namespace agora::cli {

const DaemonRecord* Profile::master() const {
  for (const DaemonRecord& d : daemons) {
    if (d.role == "master") {
      return &d;
    }
  }
  return nullptr;
}

nlohmann::json Profile::toJson() const {
  nlohmann::json daemonsJson = nlohmann::json::array();
  for (const DaemonRecord& d : daemons) {
    daemonsJson.push_back({{"role", d.role},
                           {"pid", d.pid},
                           {"http", d.http},
                           {"dir", d.dir},
                           {"log", d.log},
                           {"args", d.args}});
  }
  return {{"name", name}, {"dir", dir}, {"zk", zk}, {"daemons", daemonsJson}};
}

Result<Profile> Profile::fromJson(const nlohmann::json& j) {
  try {
    Profile p;
    p.name = j.at("name").get<std::string>();
    p.dir = j.at("dir").get<std::string>();
    p.zk = j.value("zk", "");
    for (const auto& d : j.at("daemons")) {
      DaemonRecord r;
      r.role = d.at("role").get<std::string>();
      r.pid = d.at("pid").get<int>();
      r.http = d.at("http").get<std::string>();
      r.dir = d.at("dir").get<std::string>();
      r.log = d.at("log").get<std::string>();
      r.args = d.value("args", std::vector<std::string>());
      p.daemons.push_back(r);
    }
    return p;
  } catch (const std::exception& e) {
    return Error(std::string("malformed profile: ") + e.what());
  }
}

std::string agoraHome() {
  if (const char* home = std::getenv("AGORA_HOME"); home != nullptr && *home != '\0') {
    return home;
  }
  const char* user = std::getenv("HOME");
  return std::string(user != nullptr ? user : "/tmp") + "/.agora";
}

std::string profileDir(const std::string& name) { return agoraHome() + "/profiles/" + name; }

Result<Profile> loadProfile(const std::string& name) {
  std::string path = profileDir(name) + "/profile.json";
  auto text = readFile(path);
  if (!text) {
    return Error("no local cluster in profile '" + name + "' (start one with `agora up`)");
  }
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded()) {
    return Error(path + " is not valid JSON");
  }
  return Profile::fromJson(j);
}

Status saveProfile(const Profile& profile) {
  Status made = makeDirectories(profile.dir);
  if (!made) {
    return made;
  }
  return writeFileAtomic(profile.dir + "/profile.json", profile.toJson().dump(2) + "\n");
}

std::vector<std::string> listProfiles() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(agoraHome() + "/profiles", ec)) {
    if (entry.is_directory() && pathExists(entry.path().string() + "/profile.json")) {
      out.push_back(entry.path().filename().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string credentialsDir(const std::string& profile) {
  return profileDir(profile) + "/credentials";
}

std::string daemonUrl(const Profile& profile, const DaemonRecord& daemon) {
  if (daemon.role == "zookeeper") {
    return daemon.http;
  }
  bool tls = daemon.role == "kube" || pathExists(credentialsDir(profile.name) + "/http.crt");
  return (tls ? "https://" : "http://") + daemon.http;
}

std::string resolveCredentials(const std::string& flag, bool useProfile,
                               const std::string& profile) {
  if (!flag.empty()) {
    return flag;
  }
  if (::getenv("AGORA_CREDENTIALS") != nullptr || !useProfile) {
    return "";
  }
  std::string own = credentialsDir(profile) + "/operator.json";
  return ::access(own.c_str(), R_OK) == 0 ? own : "";
}

void useBearerToken(bool useProfile, const std::string& profile) {
  std::string caPath = useProfile ? credentialsDir(profile) + "/http-ca.crt" : "";
  if (const char* ca = ::getenv("AGORA_TLS_CA"); ca != nullptr && *ca != '\0') {
    caPath = ca;
  }
  if (auto ca = caPath.empty() ? Result<std::string>(Error("none")) : readFile(caPath)) {
    setDefaultHttpTls(TlsClientConfig{*ca, "", ""});
  }
  if (const char* token = ::getenv("AGORA_TOKEN"); token != nullptr) {
    setDefaultBearerToken(token);
    return;
  }
  if (!useProfile) {
    return;
  }
  if (auto token = readTokenFile(credentialsDir(profile) + "/operator.token")) {
    setDefaultBearerToken(*token);
  }
}

Result<std::string> resolveMaster(const std::string& flag, const std::string& zk,
                                  const std::string& profile) {
  useBearerToken(flag.empty() && zk.empty(), profile);
  if (!zk.empty()) {
    if (!flag.empty()) {
      return Error("give --master or --zk, not both");
    }
    if (zk.rfind("zk://", 0) != 0) {
      return Error("--zk must look like zk://host:port[,host:port...]/path, not '" + zk + "'");
    }
    return zk;
  }
  if (!flag.empty()) {
    return flag;
  }
  auto p = loadProfile(profile);
  if (p && !p->zk.empty()) {
    return p->zk;  // an HA cluster: follow its election
  }
  if (!p) {
    return Error(p.error() + ", or pass --master=HOST:PORT");
  }
  const DaemonRecord* master = p->master();
  if (master == nullptr) {
    return Error("profile '" + profile + "' has no master");
  }
  return master->http;
}

}  // namespace agora::cli
