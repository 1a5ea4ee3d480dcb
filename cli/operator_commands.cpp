// agora agents / frameworks / tasks: tables from the master's /state.

#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/daemon.hpp"
#include "cli/profile.hpp"
#include "cli/table.hpp"
#include "common/detector.hpp"
#include "common/http.hpp"

namespace agora::cli {

namespace {

using nlohmann::json;

// Parses the common flags, fetches /state; returns an exit code on failure.
int fetchState(const std::string& verb, const std::string& summary, int argc,
               const char* const* argv, bool* all, json* state) {
  std::string master;
  std::string zk;
  std::string profile = "default";
  Flags flags("agora " + verb + " [--master=HOST:PORT | --zk=zk://...] [--profile=NAME]", summary);
  flags.add(&master, "master", "The master's HTTP address (default: the profile's master).");
  flags.add(&zk, "zk", "Follow the leader elected in ZooKeeper, e.g. zk://host:2181/agora.");
  flags.add(&profile, "profile", "The local cluster to ask when --master is not given.");
  if (all != nullptr) {
    flags.add(all, "all", "Include what has ended.");
  }
  int rc = parseFlags(flags, argc, argv);
  if (rc >= 0) {
    return rc;
  }
  return leaderState(verb, master, zk, profile, state);
}

std::string usedOf(const json& used, const json& total, const char* name) {
  return formatNumber(used.value(name, 0.0)) + "/" + formatNumber(total.value(name, 0.0));
}

}  // namespace

int leaderState(const std::string& verb, const std::string& master, const std::string& zk,
                const std::string& profile, json* state, std::string* leading) {
  auto resolved = resolveMaster(master, zk, profile);
  if (!resolved) {
    std::cerr << "agora " << verb << ": " << resolved.error() << "\n";
    return 1;
  }
  std::string address = *resolved;
  if (address.rfind("zk://", 0) == 0) {
    auto leader = findLeader(address, seconds(10));
    if (!leader) {
      std::cerr << "agora " << verb << ": " << leader.error() << "\n";
      return 1;
    }
    address = leader->ip() + ":" + std::to_string(leader->http_port());
  }
  auto response = httpGet(address, "/state", seconds(10));
  if (!response) {
    std::cerr << "agora " << verb << ": " << response.error() << "\n";
    return 1;
  }
  if (response->status != 200) {
    std::cerr << "agora " << verb << ": master answered HTTP " << response->status << "\n";
    return 1;
  }
  *state = json::parse(response->body, nullptr, false);
  if (state->is_discarded()) {
    std::cerr << "agora " << verb << ": the master's /state is not JSON\n";
    return 1;
  }
  if (state->value("leader", true) == false) {
    // A follower: ask the leader it names.
    if (!state->contains("leader_info")) {
      std::cerr << "agora " << verb << ": " << address << " does not lead, and no master leads\n";
      return 1;
    }
    const json& leader = (*state)["leader_info"];
    std::string leaderAddress =
        leader.value("ip", "") + ":" + std::to_string(leader.value("http_port", 0));
    response = httpGet(leaderAddress, "/state", seconds(10));
    if (!response || response->status != 200) {
      std::cerr << "agora " << verb << ": the leader at " << leaderAddress << " does not answer\n";
      return 1;
    }
    *state = json::parse(response->body, nullptr, false);
    if (state->is_discarded()) {
      std::cerr << "agora " << verb << ": the master's /state is not JSON\n";
      return 1;
    }
    address = leaderAddress;
  }
  if (leading != nullptr) {
    *leading = address;
  }
  return -1;
}

int agentsCommand(int argc, const char* const* argv) {
  json state;
  int rc = fetchState("agents", "Lists the agents registered with the master.", argc, argv,
                      nullptr, &state);
  if (rc >= 0) {
    return rc;
  }
  Table table({"ID", "HOSTNAME", "ADDRESS", "CPUS", "MEM", "DISK", "GPUS", "TASKS"});
  for (const json& a : state.value("agents", json::array())) {
    json total = a.value("resources", json::object());
    json used = a.value("used_resources", json::object());
    table.add({a.value("id", ""), a.value("hostname", ""), a.value("address", ""),
               usedOf(used, total, "cpus"), usedOf(used, total, "mem"),
               usedOf(used, total, "disk"), usedOf(used, total, "gpus"),
               std::to_string(a.value("task_count", 0))});
  }
  table.print(std::cout);
  return 0;
}

int frameworksCommand(int argc, const char* const* argv) {
  json state;
  bool all = false;
  int rc = fetchState("frameworks", "Lists the frameworks the master knows.", argc, argv, &all,
                      &state);
  if (rc >= 0) {
    return rc;
  }
  Table table({"ID", "NAME", "ROLES", "STATE", "TASKS", "CPUS", "MEM"});
  auto add = [&](const json& f, const std::string& status) {
    std::string roles;
    for (const json& r : f.value("roles", json::array())) {
      roles += (roles.empty() ? "" : ",") + r.get<std::string>();
    }
    json used = f.value("used_resources", json::object());
    table.add({f.value("id", ""), f.value("name", ""), roles, status,
               std::to_string(f.value("tasks", json::array()).size()),
               formatNumber(used.value("cpus", 0.0)), formatNumber(used.value("mem", 0.0))});
  };
  for (const json& f : state.value("frameworks", json::array())) {
    add(f, f.value("connected", false) ? "connected" : "disconnected");
  }
  if (all) {
    for (const json& f : state.value("completed_frameworks", json::array())) {
      add(f, "completed");
    }
  }
  table.print(std::cout);
  return 0;
}

int tasksCommand(int argc, const char* const* argv) {
  json state;
  bool all = false;
  int rc = fetchState("tasks", "Lists the tasks that have not ended (--all: also those that did).",
                      argc, argv, &all, &state);
  if (rc >= 0) {
    return rc;
  }
  std::map<std::string, std::string> hostnames;
  for (const json& a : state.value("agents", json::array())) {
    hostnames[a.value("id", "")] = a.value("hostname", "");
  }
  Table table({"ID", "NAME", "FRAMEWORK", "STATE", "HOST", "CPUS", "MEM"});
  auto add = [&](const json& t, const std::string& framework) {
    json r = t.value("resources", json::object());
    std::string agent = t.value("agent_id", "");
    table.add({t.value("id", ""), t.value("name", ""), framework, t.value("state", ""),
               hostnames.count(agent) ? hostnames[agent] : agent,
               formatNumber(r.value("cpus", 0.0)), formatNumber(r.value("mem", 0.0))});
  };
  auto addFramework = [&](const json& f) {
    std::string name = f.value("name", "");
    for (const json& t : f.value("tasks", json::array())) {
      add(t, name);
    }
    if (all) {
      for (const json& t : f.value("completed_tasks", json::array())) {
        add(t, name);
      }
    }
  };
  for (const json& f : state.value("frameworks", json::array())) {
    addFramework(f);
  }
  if (all) {
    for (const json& f : state.value("completed_frameworks", json::array())) {
      addFramework(f);
    }
  }
  table.print(std::cout);
  return 0;
}

}  // namespace agora::cli
