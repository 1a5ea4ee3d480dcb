#include "master/http.hpp"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <future>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/http_tokens.hpp"
#include "common/net.hpp"
#include "common/tls.hpp"
#include "common/zk_election.hpp"

namespace agora::master {

const std::string& dashboardPage();  // dashboard.html, built in

namespace {

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string httpAddress(const MasterInfo& info) {
  return info.ip() + ":" + std::to_string(info.http_port());
}

// What a request needs the ACLs to allow: an action, on each of these objects.
struct Needs {
  AclAction action;
  std::vector<std::string> objects = {""};
};

// Whether the ACLs let the request's principal do what it `needs`; answers 403 when not.
bool allowed(const Master& master, const HttpRequest& request, const Needs& needs,
             const HttpResponder& respond) {
  for (const std::string& object : needs.objects) {
    if (!master.authorized(needs.action, request.principal, object,
                           "HTTP " + request.method + " " + request.path)) {
      respond(HttpResponse::error(
          403, "the ACLs do not let " +
                   (request.principal.empty() ? std::string("an anonymous client")
                                              : "principal '" + request.principal + "'") +
                   " " + aclActionName(needs.action) +
                   (object.empty() ? std::string() : " on '" + object + "'")));
      return false;
    }
  }
  return true;
}

// Runs `work` with the master on its loop when this master leads and the ACLs allow what the
// request `needs`; otherwise redirects the request to the leader (307 keeps the method and
// body), or says none leads yet.
void onLeader(Loop& loop, std::shared_ptr<MasterHttpContext> ctx, const HttpRequest& request,
              HttpResponder respond, Needs needs,
              std::function<void(Master&, HttpResponder)> work) {
  loop.post([ctx, request, needs = std::move(needs), respond = std::move(respond),
             work = std::move(work)]() mutable {
    const std::string& target = request.target;
    if (Master* master = ctx->leading()) {
      if (allowed(*master, request, needs, respond)) {
        work(*master, std::move(respond));
      }
      return;
    }
    if (auto leader = ctx->leader()) {
      HttpResponse r = HttpResponse::error(307, "this master does not lead; the leader is at " +
                                                    httpAddress(*leader));
      r.headers.emplace_back("Location", ctx->scheme + httpAddress(*leader) + target);
      respond(std::move(r));
      return;
    }
    respond(HttpResponse::error(503, "no master leads yet"));
  });
}

// The agent paths the master forwards to the agent named by `agent_id`: reads, and the
// upgrades that run commands. Agents serve these only to the master and kube
// (--remote_command_principals); the CLI and the dashboard reach them through the leader.
const char* const kProxiedReads[] = {"/state", "/files/read", "/files/browse"};
const char* const kProxiedCommands[] = {"/host/exec", "/containers/exec", "/containers/attach",
                                        "/containers/portforward"};
constexpr int kMaxProxiedReads = 64;  // in flight at once; more are answered 503
std::atomic<int> proxiedReads{0};

// The agent's target for a proxied request: `agentPath` and the query as sent (repeated
// parameters kept), without agent_id.
std::string agentTarget(const std::string& agentPath, const std::string& target) {
  size_t q = target.find('?');
  std::string query;
  if (q != std::string::npos) {
    std::string rest = target.substr(q + 1);
    size_t pos = 0;
    while (pos <= rest.size()) {
      size_t amp = std::min(rest.find('&', pos), rest.size());
      std::string pair = rest.substr(pos, amp - pos);
      if (!pair.empty() && pair.rfind("agent_id=", 0) != 0 && pair != "agent_id") {
        query += (query.empty() ? "?" : "&") + pair;
      }
      pos = amp + 1;
    }
  }
  return agentPath + query;
}

// An error answer written on a connection taken over, before it is closed.
void refuseTakenOver(int fd, int status, const std::string& message) {
  std::string body = dump(nlohmann::json{{"error", message}});
  writeAll(fd, "HTTP/1.1 " + std::to_string(status) + " " +
                   (status == 404 ? "Not Found" : status == 502 ? "Bad Gateway"
                                                                : "Service Unavailable") +
                   "\r\nContent-Type: application/json\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  ::close(fd);
}

// Relays an upgraded request (exec, attach, port-forward, host exec) to its agent, with the
// master's own token, on a thread of its own until either side ends.
void proxyCommand(Loop& loop, std::shared_ptr<MasterHttpContext> ctx, const std::string& agentPath,
                  const HttpRequest& request, int fd, std::string early) {
  std::thread([&loop, ctx, agentPath, request, fd, early = std::move(early)] {
    auto found = std::make_shared<std::promise<std::pair<int, std::string>>>();
    std::string agentId = request.param("agent_id");
    loop.post([ctx, agentId, found] {
      Master* master = ctx->leading();
      std::string address = master != nullptr ? master->agentHttpAddress(agentId) : "";
      found->set_value(master == nullptr ? std::pair{503, std::string("this master does not lead")}
                       : address.empty() ? std::pair{404, "no agent '" + agentId + "'"}
                                         : std::pair{200, address});
    });
    auto answer = found->get_future();
    if (answer.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      refuseTakenOver(fd, 503, "the master is busy; try again");
      return;
    }
    auto [status, address] = answer.get();
    if (status != 200) {
      refuseTakenOver(fd, status, address);
      return;
    }
    auto agent = connectHttp(address, seconds(10));
    if (!agent) {
      refuseTakenOver(fd, 502, "cannot reach the agent: " + agent.error());
      return;
    }
    timeval none{0, 0};
    ::setsockopt(*agent, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
    ::setsockopt(*agent, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none));
    std::string head = request.method + " " + agentTarget(agentPath, request.target) +
                       " HTTP/1.1\r\nHost: " + address + "\r\n";
    for (const auto& [name, value] : request.headers) {
      if (name != "host" && name != "authorization") {
        head += name + ": " + value + "\r\n";
      }
    }
    if (const std::string& token = defaultBearerToken(); !token.empty()) {
      head += "Authorization: Bearer " + token + "\r\n";  // the master's own
    }
    head += "\r\n";
    if (writeAll(*agent, head + early)) {
      relayDescriptors(fd, *agent);
    }
    ::close(*agent);
    ::close(fd);
  }).detach();
}

void addAgentProxy(HttpServer& server, Loop& loop, std::shared_ptr<MasterHttpContext> ctx) {
  for (const char* path : kProxiedReads) {
    std::string agentPath = path;
    server.route("/agent" + agentPath, [&loop, ctx, agentPath](const HttpRequest& request,
                                                               HttpResponder respond) {
      std::string agentId = request.param("agent_id");
      if (agentId.empty()) {
        respond(HttpResponse::error(400, "which agent? give agent_id"));
        return;
      }
      std::string target = agentTarget(agentPath, request.target);
      onLeader(loop, ctx, request, std::move(respond), {AclAction::kViewState},
               [agentId, target](Master& master, HttpResponder respond) {
        std::string address = master.agentHttpAddress(agentId);
        if (address.empty()) {
          respond(HttpResponse::error(404, "no agent '" + agentId + "'"));
          return;
        }
        if (++proxiedReads > kMaxProxiedReads) {
          --proxiedReads;
          respond(HttpResponse::error(503, "too many requests to agents at once; retry"));
          return;
        }
        // The exchange blocks: not on the master's loop.
        std::thread([address, target, respond = std::move(respond)] {
          auto answer = httpRequest("GET", address, target, "", seconds(10));
          --proxiedReads;
          if (!answer) {
            respond(HttpResponse::error(502, "the agent did not answer: " + answer.error()));
            return;
          }
          respond(std::move(answer).value());
        }).detach();
      });
    });
  }
  for (const char* path : kProxiedCommands) {
    std::string agentPath = path;
    server.takeOver("/agent" + agentPath, [&loop, ctx, agentPath](const HttpRequest& request,
                                                                  int fd, std::string early) {
      proxyCommand(loop, ctx, agentPath, request, fd, std::move(early));
    });
  }
}

// Answers a role change: the roles view of the role on success, the error otherwise.
std::function<void(Status)> answerRole(Master& master, const std::string& role,
                                       HttpResponder respond) {
  return [&master, role, respond = std::move(respond)](Status done) {
    if (!done) {
      int status = done.error().find("has no quota") != std::string::npos ? 404 : 400;
      respond(HttpResponse::error(status, done.error()));
      return;
    }
    const nlohmann::json view = master.roles();
    for (const auto& r : view["roles"]) {
      if (r["name"] == role) {
        respond(HttpResponse::jsonBody(dump(r)));
        return;
      }
    }
    respond(HttpResponse::jsonBody(dump({{"name", role}})));
  };
}

// Quantities from a request: "cpus:4;mem:1024" or {"cpus": 4, "mem": 1024}.
Result<Quantities> quantitiesFrom(const nlohmann::json& j, bool limit) {
  std::string text;
  if (j.is_string()) {
    text = j.get<std::string>();
  } else if (j.is_object()) {
    for (const auto& [name, value] : j.items()) {
      if (!value.is_number()) {
        return Error("'" + name + "' must be a number");
      }
      text += (text.empty() ? "" : ";") + name + ":" + std::to_string(value.get<double>());
    }
  } else if (!j.is_null()) {
    return Error("amounts are \"cpus:4;mem:1024\" or {\"cpus\": 4, \"mem\": 1024}");
  }
  return limit ? Quantities::parseLimit(text) : Quantities::parse(text);
}

}  // namespace

void addMasterRoutes(HttpServer& server, Loop& loop, MasterHttpContext context) {
  auto ctx = std::make_shared<MasterHttpContext>(std::move(context));
  ctx->scheme = server.usesTls() ? "https://" : "http://";
  server.route("/health", [](const HttpRequest&, HttpResponder respond) {
    respond(HttpResponse::text("OK\n"));
  });
  server.route("/master/info", [&loop, ctx](const HttpRequest&, HttpResponder respond) {
    loop.post([ctx, respond = std::move(respond)] {
      if (Master* master = ctx->leading()) {
        respond(HttpResponse::jsonBody(masterInfoToJson(master->info())));
        return;
      }
      if (auto leader = ctx->leader()) {
        respond(HttpResponse::jsonBody(masterInfoToJson(*leader)));
        return;
      }
      respond(HttpResponse::error(503, "no master leads yet"));
    });
  });
  HttpHandler state = [&loop, ctx](const HttpRequest& request, HttpResponder respond) {
    loop.post([ctx, request, respond = std::move(respond)] {
      if (Master* master = ctx->leading()) {
        if (allowed(*master, request, {AclAction::kViewState}, respond)) {
          respond(HttpResponse::jsonBody(dump(master->state())));
        }
        return;
      }
      nlohmann::json j = {{"id", ctx->self.id()},
                          {"hostname", ctx->self.hostname()},
                          {"version", ctx->self.version()},
                          {"leader", false}};
      if (auto leader = ctx->leader()) {
        j["leader_info"] = nlohmann::json::parse(masterInfoToJson(*leader));
      }
      respond(HttpResponse::jsonBody(dump(j)));
    });
  };
  // The dashboard: a page that reads the JSON endpoints (every other path is still a 404).
  server.route("/", [](const HttpRequest& request, HttpResponder respond) {
    if (request.path != "/" && request.path != "/dashboard") {
      respond(HttpResponse::error(404, "no such endpoint: " + request.path));
      return;
    }
    HttpResponse page = HttpResponse::text(dashboardPage());
    page.contentType = "text/html; charset=utf-8";
    respond(std::move(page));
  });
  server.route("/dashboard/history", [&loop, ctx](const HttpRequest& request,
                                                  HttpResponder respond) {
    onLeader(loop, ctx, request, std::move(respond), {AclAction::kViewState},
             [](Master& master, HttpResponder respond) {
      respond(HttpResponse::jsonBody(dump(master.history())));
    });
  });
  server.route("/state", state);
  server.route("/master/state", state);
  server.route("/metrics", [&server, &loop, ctx](const HttpRequest& request,
                                                 HttpResponder respond) {
    loop.post([&server, ctx, request, respond = std::move(respond)] {
      Master* master = ctx->leading();
      if (master != nullptr && !allowed(*master, request, {AclAction::kViewState}, respond)) {
        return;
      }
      HttpResponse r = HttpResponse::text(
          master != nullptr ? master->metricsText()
                            : "# HELP agora_master_elected 1 when this master leads.\n"
                              "# TYPE agora_master_elected gauge\nagora_master_elected 0\n");
      r.body += server.metricsText("agora_master");
      r.contentType = "text/plain; version=0.0.4; charset=utf-8";
      respond(std::move(r));
    });
  });
  server.route("/roles", [&loop, ctx](const HttpRequest& request, HttpResponder respond) {
    onLeader(loop, ctx, request, std::move(respond), {AclAction::kViewState},
             [](Master& master, HttpResponder respond) {
      respond(HttpResponse::jsonBody(dump(master.roles())));
    });
  });
  server.route("/weights", [&loop, ctx](const HttpRequest& request, HttpResponder respond) {
    if (request.method == "GET") {
      onLeader(loop, ctx, request, std::move(respond), {AclAction::kViewState},
             [](Master& master, HttpResponder respond) {
        nlohmann::json out = nlohmann::json::array();
        const nlohmann::json view = master.roles();
        for (const auto& r : view["roles"]) {
          out.push_back({{"role", r["name"]}, {"weight", r["weight"]}});
        }
        respond(HttpResponse::jsonBody(dump(out)));
      });
      return;
    }
    if (request.method != "POST" && request.method != "PUT") {
      respond(HttpResponse::error(405, "GET, or POST {\"role\": ROLE, \"weight\": W}"));
      return;
    }
    nlohmann::json body = nlohmann::json::parse(request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object() || !body.contains("role") ||
        !body["role"].is_string() || !body.contains("weight") || !body["weight"].is_number()) {
      respond(HttpResponse::error(400, "expected {\"role\": ROLE, \"weight\": W}"));
      return;
    }
    std::string role = body["role"];
    double weight = body["weight"];
    onLeader(loop, ctx, request, std::move(respond), {AclAction::kSetWeights, {role}},
             [role, weight](Master& master, HttpResponder respond) {
               master.setWeight(role, weight, answerRole(master, role, std::move(respond)));
             });
  });
  server.route("/quota", [&loop, ctx](const HttpRequest& request, HttpResponder respond) {
    if (request.method == "GET") {
      std::string only = request.param("role");
      onLeader(loop, ctx, request, std::move(respond), {AclAction::kViewState},
               [only](Master& master, HttpResponder respond) {
                 nlohmann::json out = nlohmann::json::array();
                 const nlohmann::json view = master.roles();
                 for (const auto& r : view["roles"]) {
                   if (r.contains("quota") && (only.empty() || r["name"] == only)) {
                     out.push_back({{"role", r["name"]},
                                    {"guarantee", r["quota"]["guarantee"]},
                                    {"limit", r["quota"]["limit"]},
                                    {"allocated", r["allocated"]},
                                    {"reserved", r["reserved"]}});
                     if (r["quota"].contains("warning")) {
                       out.back()["warning"] = r["quota"]["warning"];
                     }
                   }
                 }
                 if (!only.empty() && out.empty()) {
                   respond(HttpResponse::error(404, "role '" + only + "' has no quota"));
                   return;
                 }
                 respond(HttpResponse::jsonBody(dump(out)));
               });
      return;
    }
    if (request.method == "DELETE") {
      std::string role = request.param("role");
      if (role.empty()) {
        respond(HttpResponse::error(400, "DELETE /quota?role=ROLE"));
        return;
      }
      onLeader(loop, ctx, request, std::move(respond), {AclAction::kSetQuota, {role}},
               [role](Master& master, HttpResponder respond) {
                 master.removeQuota(role, answerRole(master, role, std::move(respond)));
               });
      return;
    }
    if (request.method != "POST" && request.method != "PUT") {
      respond(HttpResponse::error(405, "GET, POST or DELETE"));
      return;
    }
    nlohmann::json body = nlohmann::json::parse(request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object() || !body.contains("role") ||
        !body["role"].is_string()) {
      respond(HttpResponse::error(
          400, "expected {\"role\": ROLE, \"guarantee\": \"cpus:4\", \"limit\": \"cpus:8\"}"));
      return;
    }
    auto guarantee = quantitiesFrom(body.value("guarantee", nlohmann::json()), false);
    auto limit = quantitiesFrom(body.value("limit", nlohmann::json()), true);
    if (!guarantee || !limit) {
      respond(HttpResponse::error(400, !guarantee ? "guarantee: " + guarantee.error()
                                                  : "limit: " + limit.error()));
      return;
    }
    RoleQuota quota;
    quota.guarantee = *guarantee;
    quota.limit = *limit;
    std::string role = body["role"];
    onLeader(loop, ctx, request, std::move(respond), {AclAction::kSetQuota, {role}},
             [role, quota](Master& master, HttpResponder respond) {
               master.setQuota(role, quota, answerRole(master, role, std::move(respond)));
             });
  });
  for (bool reserve : {true, false}) {
    server.route(reserve ? "/reserve" : "/unreserve", [&loop, ctx, reserve](
                                                          const HttpRequest& request,
                                                          HttpResponder respond) {
      const char* usage = "POST {\"agent_id\": ID, \"resources\": \"cpus(ROLE):4;mem(ROLE):1024\"}";
      if (request.method != "POST") {
        respond(HttpResponse::error(405, usage));
        return;
      }
      nlohmann::json body = nlohmann::json::parse(request.body, nullptr, false);
      if (body.is_discarded() || !body.is_object() || !body.contains("agent_id") ||
          !body["agent_id"].is_string() || !body.contains("resources") ||
          !body["resources"].is_string()) {
        respond(HttpResponse::error(400, std::string("expected ") + usage));
        return;
      }
      auto parsed = Resources::parse(body["resources"].get<std::string>());
      if (!parsed) {
        respond(HttpResponse::error(400, "resources: " + parsed.error()));
        return;
      }
      // "cpus(eng):4" names the role; an operator's reservation is a dynamic one.
      Resources resources;
      std::set<std::string> roles;
      for (Resource r : parsed->items()) {
        if (r.reservations_size() > 0) {
          auto* last = r.mutable_reservations(r.reservations_size() - 1);
          last->set_type(Resource::ReservationInfo::DYNAMIC);
          last->set_principal(request.principal.empty() ? "operator" : request.principal);
          roles.insert(last->role());
        }
        resources += r;
      }
      std::string agentId = body["agent_id"];
      Needs needs{AclAction::kReserveResources, {roles.begin(), roles.end()}};
      if (needs.objects.empty()) needs.objects = {"*"};
      onLeader(loop, ctx, request, std::move(respond), std::move(needs),
               [agentId, resources, reserve](Master& master, HttpResponder respond) {
                 master.operatorReserve(agentId, resources, reserve,
                                        [respond = std::move(respond)](Status done) {
                                          if (!done) {
                                            const std::string& why = done.error();
                                            int status =
                                                why.rfind("unknown agent", 0) == 0 ? 404
                                                : why.find(" free") != std::string::npos ||
                                                        why.rfind("stored", 0) == 0
                                                    ? 409
                                                    : 400;
                                            respond(HttpResponse::error(status, why));
                                            return;
                                          }
                                          respond(HttpResponse::jsonBody("{}"));
                                        });
               });
    });
  }
  server.route("/maintenance/status", [&loop, ctx](const HttpRequest& request,
                                                   HttpResponder respond) {
    onLeader(loop, ctx, request, std::move(respond), {AclAction::kViewState},
             [](Master& master, HttpResponder respond) {
      respond(HttpResponse::jsonBody(dump(master.maintenanceStatus())));
    });
  });
  // POST /maintenance/schedule {"machines": [...], "start": UNIX_SECONDS, "duration": SECONDS}
  // POST /maintenance/drain {"machine": HOST, "kill": BOOL, "grace_seconds": S}
  // POST /maintenance/up {"machine": HOST}
  for (std::string action : {"schedule", "drain", "up"}) {
    server.route("/maintenance/" + action, [&loop, ctx, action](const HttpRequest& request,
                                                                HttpResponder respond) {
      if (request.method != "POST") {
        respond(HttpResponse::error(405, "POST a JSON body (see the operator guide)"));
        return;
      }
      nlohmann::json body = nlohmann::json::parse(request.body, nullptr, false);
      if (body.is_discarded() || !body.is_object()) {
        respond(HttpResponse::error(400, "the body must be a JSON object"));
        return;
      }
      auto answer = [](HttpResponder respond) {
        return [respond = std::move(respond)](Status done) {
          respond(done ? HttpResponse::jsonBody("{}") : HttpResponse::error(400, done.error()));
        };
      };
      if (action == "schedule") {
        std::vector<std::string> machines;
        if (body.contains("machines") && body["machines"].is_array()) {
          for (const auto& m : body["machines"]) {
            if (!m.is_string()) {
              respond(HttpResponse::error(400, "machines are hostnames (strings)"));
              return;
            }
            machines.push_back(m);
          }
        }
        if (!body.contains("start") || !body["start"].is_number() ||
            !body.contains("duration") || !body["duration"].is_number()) {
          respond(HttpResponse::error(400, "expected {\"machines\": [HOST, ...], \"start\": "
                                           "UNIX_SECONDS, \"duration\": SECONDS}"));
          return;
        }
        double start = body["start"];
        double duration = body["duration"];
        onLeader(loop, ctx, request, std::move(respond), {AclAction::kDrainAgents, machines},
                 [machines, start, duration, answer](Master& master, HttpResponder respond) {
                   master.scheduleMaintenance(machines, start, duration,
                                              answer(std::move(respond)));
                 });
        return;
      }
      if (!body.contains("machine") || !body["machine"].is_string()) {
        respond(HttpResponse::error(400, "expected {\"machine\": HOST, ...}"));
        return;
      }
      std::string machine = body["machine"];
      if (action == "drain") {
        bool kill = body.value("kill", false);
        double grace = body.value("grace_seconds", 0.0);
        if (!std::isfinite(grace) || grace < 0) {
          respond(HttpResponse::error(400, "grace_seconds must be a non-negative number"));
          return;
        }
        onLeader(loop, ctx, request, std::move(respond), {AclAction::kDrainAgents, {machine}},
                 [machine, kill, grace, answer](Master& master, HttpResponder respond) {
                   master.drainMachine(machine, kill, fromSeconds(grace),
                                       answer(std::move(respond)));
                 });
        return;
      }
      onLeader(loop, ctx, request, std::move(respond), {AclAction::kDrainAgents, {machine}},
               [machine, answer](Master& master, HttpResponder respond) {
                 master.upMachine(machine, answer(std::move(respond)));
               });
    });
  }
  server.route("/redirect", [&loop, ctx](const HttpRequest& request, HttpResponder respond) {
    std::string path = request.param("path", "/");
    if (path.empty() || path.front() != '/') {
      path = "/" + path;
    }
    loop.post([ctx, path, respond = std::move(respond)] {
      std::optional<MasterInfo> leader;
      if (Master* master = ctx->leading()) {
        leader = master->info();
      } else {
        leader = ctx->leader();
      }
      if (!leader) {
        respond(HttpResponse::error(503, "no master leads yet"));
        return;
      }
      HttpResponse r = HttpResponse::text("", 307);
      r.headers.emplace_back("Location", ctx->scheme + httpAddress(*leader) + path);
      respond(std::move(r));
    });
  });
  addAgentProxy(server, loop, ctx);
}

std::vector<std::string> agentCommandProxyPaths() {
  std::vector<std::string> paths;
  for (const char* path : kProxiedCommands) {
    paths.push_back(std::string("/agent") + path);
  }
  return paths;
}

void addMasterRoutes(HttpServer& server, Loop& loop, Master& master) {
  MasterHttpContext context;
  context.leading = [&master] { return &master; };
  context.leader = [&master] { return std::optional<MasterInfo>(master.info()); };
  context.self = master.info();
  addMasterRoutes(server, loop, std::move(context));
}

}  // namespace agora::master
