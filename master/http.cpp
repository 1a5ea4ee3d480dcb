#include "master/http.hpp"

#include <nlohmann/json.hpp>

#include "common/zk_election.hpp"

namespace agora::master {

namespace {

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string httpAddress(const MasterInfo& info) {
  return info.ip() + ":" + std::to_string(info.http_port());
}

}  // namespace

void addMasterRoutes(HttpServer& server, Loop& loop, MasterHttpContext context) {
  auto ctx = std::make_shared<MasterHttpContext>(std::move(context));
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
  HttpHandler state = [&loop, ctx](const HttpRequest&, HttpResponder respond) {
    loop.post([ctx, respond = std::move(respond)] {
      if (Master* master = ctx->leading()) {
        respond(HttpResponse::jsonBody(dump(master->state())));
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
  server.route("/state", state);
  server.route("/master/state", state);
  server.route("/metrics", [&loop, ctx](const HttpRequest&, HttpResponder respond) {
    loop.post([ctx, respond = std::move(respond)] {
      Master* master = ctx->leading();
      HttpResponse r = HttpResponse::text(
          master != nullptr ? master->metricsText()
                            : "# HELP agora_master_elected 1 when this master leads.\n"
                              "# TYPE agora_master_elected gauge\nagora_master_elected 0\n");
      r.contentType = "text/plain; version=0.0.4; charset=utf-8";
      respond(std::move(r));
    });
  });
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
      r.headers.emplace_back("Location", "http://" + httpAddress(*leader) + path);
      respond(std::move(r));
    });
  });
}

void addMasterRoutes(HttpServer& server, Loop& loop, Master& master) {
  MasterHttpContext context;
  context.leading = [&master] { return &master; };
  context.leader = [&master] { return std::optional<MasterInfo>(master.info()); };
  context.self = master.info();
  addMasterRoutes(server, loop, std::move(context));
}

}  // namespace agora::master
