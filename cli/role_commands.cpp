// agora roles / weights / quota / reserve / unreserve / maintenance: how the cluster is shared,
// and the operator's settings for it.

#include <chrono>
#include <ctime>
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

struct Target {
  std::string master;
  std::string zk;
  std::string profile = "default";

  void addTo(Flags& flags) {
    flags.add(&master, "master", "The master's HTTP address (default: the profile's master).");
    flags.add(&zk, "zk", "Follow the leader elected in ZooKeeper, e.g. zk://host:2181/agora.");
    flags.add(&profile, "profile", "The local cluster to ask when --master is not given.");
  }
};

// Sends a request to the leading master (following a follower's redirect once). Prints the
// error and returns nothing on failure.
std::optional<json> call(const std::string& verb, const Target& target, const std::string& method,
                         const std::string& path, const std::string& body = "") {
  auto resolved = resolveMaster(target.master, target.zk, target.profile);
  if (!resolved) {
    std::cerr << "agora " << verb << ": " << resolved.error() << "\n";
    return std::nullopt;
  }
  auto leader = findLeader(*resolved, seconds(10));
  if (!leader) {
    std::cerr << "agora " << verb << ": " << leader.error() << "\n";
    return std::nullopt;
  }
  std::string address = leader->ip() + ":" + std::to_string(leader->http_port());
  auto response = httpRequest(method, address, path, body, seconds(15));
  for (int hops = 0; response && response->status == 307 && hops < 2; ++hops) {
    std::string location;
    for (const auto& [name, value] : response->headers) {
      if (name == "Location" || name == "location") location = value;
    }
    size_t start = location.rfind("https://", 0) == 0  ? 8
                   : location.rfind("http://", 0) == 0 ? 7
                                                        : 0;
    if (start == 0) break;
    address = location.substr(0, location.find('/', start));  // with its scheme
    response = httpRequest(method, address, path, body, seconds(15));
  }
  if (!response) {
    std::cerr << "agora " << verb << ": " << response.error() << "\n";
    return std::nullopt;
  }
  json parsed = json::parse(response->body, nullptr, false);
  if (response->status != 200) {
    std::string why = !parsed.is_discarded() && parsed.is_object() && parsed.contains("error")
                          ? parsed["error"].get<std::string>()
                          : "HTTP " + std::to_string(response->status);
    std::cerr << "agora " << verb << ": " << why << "\n";
    return std::nullopt;
  }
  if (parsed.is_discarded()) {
    std::cerr << "agora " << verb << ": the master's answer is not JSON\n";
    return std::nullopt;
  }
  return parsed;
}

// "2026-11-29 14:05:00Z" for seconds since the epoch.
std::string utcTime(double seconds) {
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[32];
  std::strftime(out, sizeof(out), "%Y-%m-%d %H:%M:%SZ", &tm);
  return out;
}

// "cpus:4;mem:1024" from {"cpus": 4, "mem": 1024}; "-" when empty.
std::string amounts(const json& q) {
  std::string out;
  for (const char* name : {"cpus", "mem", "disk", "gpus"}) {
    if (q.is_object() && q.contains(name)) {
      out += (out.empty() ? "" : ";") + std::string(name) + ":" +
             formatNumber(q[name].get<double>());
    }
  }
  return out.empty() ? "-" : out;
}

}  // namespace

int rolesCommand(int argc, const char* const* argv) {
  Target target;
  bool why = false;
  Flags flags("agora roles [--why] [--master=HOST:PORT | --zk=zk://...]",
              "Lists the roles: weight, quota, what each is allocated and has reserved, and its "
              "frameworks. --why says, for each framework, why the last allocation offered it "
              "nothing.");
  target.addTo(flags);
  flags.add(&why, "why", "One line per framework: offered, or why not.");
  int rc = parseFlags(flags, argc, argv);
  if (rc >= 0) {
    return rc;
  }
  auto roles = call("roles", target, "GET", "/roles");
  if (!roles) {
    return 1;
  }
  if (why) {
    Table table({"ROLE", "FRAMEWORK", "NAME", "ALLOCATED", "SHARE", "LAST ALLOCATION"});
    for (const json& r : (*roles)["roles"]) {
      for (const json& f : r.value("frameworks", json::array())) {
        table.add({r.value("name", ""), f.value("id", ""), f.value("name", ""),
                   amounts(f.value("allocated", json::object())),
                   formatNumber(f.value("share", 0.0)),
                   f.value("offered", false) ? "offered" : f.value("why_not_offered", "")});
      }
    }
    table.print(std::cout);
    return 0;
  }
  Table table({"ROLE", "WEIGHT", "ALLOCATED", "RESERVED", "GUARANTEE", "LIMIT", "FRAMEWORKS"});
  for (const json& r : (*roles)["roles"]) {
    json quota = r.value("quota", json::object());
    std::string limit = quota.contains("limit") ? amounts(quota["limit"]) : "-";
    table.add({r.value("name", ""), formatNumber(r.value("weight", 1.0)),
               amounts(r.value("allocated", json::object())),
               amounts(r.value("reserved", json::object())),
               amounts(quota.value("guarantee", json::object())), limit,
               std::to_string(r.value("frameworks", json::array()).size())});
  }
  table.print(std::cout);
  std::cout << "cluster total: " << amounts((*roles)["total"]) << "\n";
  return 0;
}

int weightsCommand(int argc, const char* const* argv) {
  Target target;
  Flags flags("agora weights [set ROLE=WEIGHT ...] [--master=HOST:PORT | --zk=zk://...]",
              "Lists the roles' weights, or sets them: a role with weight 2 gets twice the share "
              "of a role with weight 1.");
  target.addTo(flags);
  std::vector<std::string> words;
  int rc = parseFlags(flags, argc, argv, &words);
  if (rc >= 0) {
    return rc;
  }
  if (words.empty()) {
    auto weights = call("weights", target, "GET", "/weights");
    if (!weights) {
      return 1;
    }
    Table table({"ROLE", "WEIGHT"});
    for (const json& w : *weights) {
      table.add({w.value("role", ""), formatNumber(w.value("weight", 1.0))});
    }
    table.print(std::cout);
    return 0;
  }
  if (words[0] != "set" || words.size() < 2) {
    std::cerr << "agora weights: usage: agora weights set ROLE=WEIGHT [ROLE=WEIGHT ...]\n";
    return 2;
  }
  std::vector<std::pair<std::string, double>> settings;
  for (size_t i = 1; i < words.size(); ++i) {
    size_t eq = words[i].find('=');
    char* end = nullptr;
    double weight = eq == std::string::npos ? 0 : std::strtod(words[i].c_str() + eq + 1, &end);
    if (eq == std::string::npos || eq == 0 || end == nullptr || *end != '\0' ||
        end == words[i].c_str() + eq + 1) {
      std::cerr << "agora weights: '" << words[i] << "' is not ROLE=WEIGHT\n";
      return 2;
    }
    settings.emplace_back(words[i].substr(0, eq), weight);
  }
  for (const auto& [role, weight] : settings) {
    json body = {{"role", role}, {"weight", weight}};
    if (!call("weights", target, "POST", "/weights", body.dump())) {
      return 1;
    }
    std::cout << "role " << role << ": weight " << formatNumber(weight) << "\n";
  }
  return 0;
}

int quotaCommand(int argc, const char* const* argv) {
  Target target;
  std::string guarantee;
  std::string limit;
  Flags flags(
      "agora quota get [ROLE] | set ROLE [--guarantee=AMOUNTS] [--limit=AMOUNTS] | remove ROLE",
      "Quota per role (over the role and its children): a guarantee is set aside until the role "
      "uses it; a limit is never exceeded. AMOUNTS: \"cpus:4;mem:8192\" (cpus, mem, disk, gpus); "
      "kinds missing from a limit are unlimited.");
  target.addTo(flags);
  flags.add(&guarantee, "guarantee", "(set) what the role is guaranteed.");
  flags.add(&limit, "limit", "(set) what the role may never exceed.");
  std::vector<std::string> words;
  int rc = parseFlags(flags, argc, argv, &words);
  if (rc >= 0) {
    return rc;
  }
  std::string action = words.empty() ? "get" : words[0];
  if (action == "get") {
    std::string path = "/quota";
    if (words.size() > 1) {
      path += "?role=" + urlEncode(words[1]);
    }
    auto quotas = call("quota", target, "GET", path);
    if (!quotas) {
      return 1;
    }
    Table table({"ROLE", "GUARANTEE", "LIMIT", "ALLOCATED", "RESERVED"});
    std::vector<std::string> warnings;
    for (const json& q : *quotas) {
      table.add({q.value("role", ""), amounts(q.value("guarantee", json::object())),
                 amounts(q.value("limit", json::object())),
                 amounts(q.value("allocated", json::object())),
                 amounts(q.value("reserved", json::object()))});
      if (q.contains("warning")) {
        warnings.push_back(q.value("role", "") + ": " + q["warning"].get<std::string>());
      }
    }
    table.print(std::cout);
    for (const std::string& w : warnings) {
      std::cout << "warning: " << w << "\n";
    }
    return 0;
  }
  if ((action == "set" || action == "remove") && words.size() != 2) {
    std::cerr << "agora quota: usage: agora quota " << action << " ROLE"
              << (action == "set" ? " [--guarantee=...] [--limit=...]" : "") << "\n";
    return 2;
  }
  if (action == "set") {
    if (guarantee.empty() && limit.empty()) {
      std::cerr << "agora quota: set needs --guarantee, --limit or both\n";
      return 2;
    }
    json body = {{"role", words[1]}, {"guarantee", guarantee}};
    if (!limit.empty()) {
      body["limit"] = limit;
    }
    auto role = call("quota", target, "POST", "/quota", body.dump());
    if (!role) {
      return 1;
    }
    json quota = role->value("quota", json::object());
    std::cout << "role " << words[1] << ": guarantee "
              << amounts(quota.value("guarantee", json::object())) << ", limit "
              << amounts(quota.value("limit", json::object())) << "\n";
    if (quota.contains("warning")) {
      std::cout << "warning: " << quota["warning"].get<std::string>() << "\n";
    }
    return 0;
  }
  if (action == "remove") {
    if (!call("quota", target, "DELETE", "/quota?role=" + urlEncode(words[1]))) {
      return 1;
    }
    std::cout << "role " << words[1] << ": quota removed\n";
    return 0;
  }
  std::cerr << "agora quota: unknown action '" << action << "' (get, set or remove)\n";
  return 2;
}

namespace {

int reservationCommand(bool reserve, int argc, const char* const* argv) {
  const std::string verb = reserve ? "reserve" : "unreserve";
  Target target;
  Flags flags("agora " + verb + " AGENT_ID 'cpus(ROLE):4;mem(ROLE):1024' [--master=...]",
              reserve ? "Reserves free resources of an agent for a role (a dynamic reservation, "
                        "stored in the registry). Offers on the agent are rescinded first."
                      : "Gives an operator's dynamic reservation back to the unreserved pool.");
  target.addTo(flags);
  std::vector<std::string> words;
  int rc = parseFlags(flags, argc, argv, &words);
  if (rc >= 0) {
    return rc;
  }
  if (words.size() != 2) {
    std::cerr << "agora " << verb << ": usage: agora " << verb
              << " AGENT_ID 'cpus(ROLE):4;mem(ROLE):1024'\n";
    return 2;
  }
  json body = {{"agent_id", words[0]}, {"resources", words[1]}};
  if (!call(verb, target, "POST", "/" + verb, body.dump())) {
    return 1;
  }
  std::cout << (reserve ? "reserved " : "unreserved ") << words[1] << " on " << words[0]
            << "\n";
  return 0;
}

}  // namespace

int maintenanceCommand(int argc, const char* const* argv) {
  Target target;
  std::string start = "now";
  Duration duration = hours(1);
  bool kill = false;
  Duration grace = Duration::zero();
  Flags flags(
      "agora maintenance status | schedule HOST... [--start=now|+DURATION|UNIX_SECONDS] "
      "[--duration=1hrs] | drain HOST [--kill] [--grace=5secs] | up HOST",
      "Maintenance of machines (by hostname). schedule: frameworks running there are asked to "
      "move (inverse offers), and offers carry the window; at its start the tasks are killed "
      "and the machine is offered nothing until the window ends. drain: no more offers now; "
      "once its tasks are gone (--kill kills them) the machine is down until `up`.");
  target.addTo(flags);
  flags.add(&start, "start", "(schedule) when the window starts: now, +DURATION or a Unix time.");
  flags.add(&duration, "duration", "(schedule) how long the window lasts.");
  flags.add(&kill, "kill", "(drain) kill the tasks rather than wait for them to finish.");
  flags.add(&grace, "grace", "(drain) the kill's grace period.");
  std::vector<std::string> words;
  int rc = parseFlags(flags, argc, argv, &words);
  if (rc >= 0) {
    return rc;
  }
  std::string action = words.empty() ? "status" : words[0];
  if (action == "status") {
    auto status = call("maintenance", target, "GET", "/maintenance/status");
    if (!status) {
      return 1;
    }
    Table table({"MACHINE", "MODE", "WINDOW START", "DURATION", "AGENTS", "TASKS",
                 "INVERSE OFFERS"});
    for (const json& m : (*status)["machines"]) {
      std::string answers;
      for (const json& a : m.value("inverse_offers", json::array())) {
        answers += (answers.empty() ? "" : ", ") + a.value("framework_id", "") + ": " +
                   a.value("response", "");
      }
      json window = m.value("window", json::object());
      table.add({m.value("hostname", ""), m.value("mode", ""),
                 window.empty() ? "-" : utcTime(window.value("start", 0.0)),
                 window.empty() ? "-" : formatDuration(fromSeconds(window.value("duration", 0.0))),
                 std::to_string(m.value("agents", json::array()).size()),
                 std::to_string(m.value("tasks", 0)), answers.empty() ? "-" : answers});
    }
    table.print(std::cout);
    return 0;
  }
  if (action == "schedule") {
    if (words.size() < 2) {
      std::cerr << "agora maintenance: schedule needs at least one machine (hostname)\n";
      return 2;
    }
    double now = std::chrono::duration<double>(
                     std::chrono::system_clock::now().time_since_epoch()).count();
    double at = now;
    if (start != "now") {
      if (start[0] == '+') {
        auto offset = parseDuration(start.substr(1));
        if (!offset) {
          std::cerr << "agora maintenance: --start: '" << start << "' is not +DURATION\n";
          return 2;
        }
        at = now + toSeconds(*offset);
      } else {
        char* end = nullptr;
        at = std::strtod(start.c_str(), &end);
        if (end == start.c_str() || *end != '\0') {
          std::cerr << "agora maintenance: --start must be now, +DURATION or a Unix time\n";
          return 2;
        }
      }
    }
    json body = {{"machines", std::vector<std::string>(words.begin() + 1, words.end())},
                 {"start", at},
                 {"duration", toSeconds(duration)}};
    if (!call("maintenance", target, "POST", "/maintenance/schedule", body.dump())) {
      return 1;
    }
    std::cout << "scheduled " << formatDuration(duration) << " of maintenance on "
              << words.size() - 1 << " machine(s)\n";
    return 0;
  }
  if ((action == "drain" || action == "up") && words.size() == 2) {
    json body = {{"machine", words[1]}};
    if (action == "drain") {
      body["kill"] = kill;
      body["grace_seconds"] = toSeconds(grace);
    }
    if (!call("maintenance", target, "POST", "/maintenance/" + action, body.dump())) {
      return 1;
    }
    std::cout << words[1] << (action == "drain" ? ": draining\n" : ": up\n");
    return 0;
  }
  std::cerr << "agora maintenance: usage: status | schedule HOST... | drain HOST | up HOST\n";
  return 2;
}

int reserveCommand(int argc, const char* const* argv) {
  return reservationCommand(true, argc, argv);
}

int unreserveCommand(int argc, const char* const* argv) {
  return reservationCommand(false, argc, argv);
}

}  // namespace agora::cli
