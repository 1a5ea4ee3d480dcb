#include "master/http.hpp"

#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>

namespace agora::master {

void addMasterRoutes(HttpServer& server, Loop& loop, Master& master) {
  server.route("/health", [](const HttpRequest&, HttpResponder respond) {
    respond(HttpResponse::text("OK\n"));
  });
  server.route("/master/info", [&loop, &master](const HttpRequest&, HttpResponder respond) {
    loop.post([&master, respond = std::move(respond)] {
      std::string body;
      google::protobuf::util::JsonPrintOptions options;
      options.preserve_proto_field_names = true;
      (void)google::protobuf::util::MessageToJsonString(master.info(), &body, options);
      respond(HttpResponse::jsonBody(body));
    });
  });
  HttpHandler state = [&loop, &master](const HttpRequest&, HttpResponder respond) {
    loop.post([&master, respond = std::move(respond)] {
      respond(HttpResponse::jsonBody(
          master.state().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
    });
  };
  server.route("/state", state);
  server.route("/master/state", state);
  server.route("/metrics", [&loop, &master](const HttpRequest&, HttpResponder respond) {
    loop.post([&master, respond = std::move(respond)] {
      HttpResponse r = HttpResponse::text(master.metricsText());
      r.contentType = "text/plain; version=0.0.4; charset=utf-8";
      respond(std::move(r));
    });
  });
}

}  // namespace agora::master
