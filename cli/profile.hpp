#pragma once

// Local cluster profiles: $AGORA_HOME/profiles/<name> (AGORA_HOME defaults to ~/.agora) holds
// each daemon's work directory and log, and profile.json says which processes make up the
// cluster and where they listen.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace agora::cli {

struct DaemonRecord {
  std::string role;      // "master", "agent" or "zookeeper"
  int pid = 0;
  std::string http;      // host:port
  std::string dir;
  std::string log;
  std::vector<std::string> args;  // how it was started (agents), so it can be started again
};

struct Profile {
  std::string name;
  std::string dir;
  std::string zk;                     // zk://... for an HA cluster
  std::vector<DaemonRecord> daemons;  // the masters first

  const DaemonRecord* master() const;
  nlohmann::json toJson() const;
  static Result<Profile> fromJson(const nlohmann::json& j);
};

std::string agoraHome();
std::string profileDir(const std::string& name);

Result<Profile> loadProfile(const std::string& name);
Status saveProfile(const Profile& profile);
std::vector<std::string> listProfiles();

// The master to talk to: `zk` (a zk:// URL) or `flag` (HOST:PORT or zk://) when given, else the
// profile's (its ZooKeeper URL for an HA cluster, its master's HTTP address otherwise).
Result<std::string> resolveMaster(const std::string& flag, const std::string& zk,
                                  const std::string& profile);

// The CURVE credentials a CLI command that acts as a framework uses: `flag` when given, else
// $AGORA_CREDENTIALS (left to the SDK), else, for the profile's own cluster (`useProfile`), the
// profile's operator credentials when `agora up` made them. Empty: none.
std::string resolveCredentials(const std::string& flag, bool useProfile,
                               const std::string& profile);
// The bearer token CLI requests carry: $AGORA_TOKEN, else (for the profile's own cluster,
// `useProfile`) the profile's operator token when it has one. And the CA the HTTP APIs' TLS
// certificates must chain to: $AGORA_TLS_CA (a file), else the profile's when `agora up` made
// one; with one, requests go over HTTPS. resolveMaster() calls it.
void useBearerToken(bool useProfile, const std::string& profile);
// Where `agora up` keeps a profile's credentials (and ACLs).
std::string credentialsDir(const std::string& profile);
// Where to reach a daemon of a profile, with its scheme: https:// for the kube API, and for the
// master and agents when `agora up` gave them TLS; a ZooKeeper server's bare host:port.
std::string daemonUrl(const Profile& profile, const DaemonRecord& daemon);

// The leading master's /state, found as resolveMaster says (following a follower to the
// leader), and its HTTP address in `leading`; prints why not as "agora VERB: ..." and returns 1
// then, -1 on success.
int leaderState(const std::string& verb, const std::string& master, const std::string& zk,
                const std::string& profile, nlohmann::json* state,
                std::string* leading = nullptr);

}  // namespace agora::cli
