// The kube dashboard's page (dashboard.html, built in), and the other paths served without a
// token.

#include "frameworks/k8s-like/apiserver/api_server.hpp"

namespace agora::kube {

const std::string& dashboardPage();  // generated from dashboard.html

bool ApiServer::servedWithoutToken(const std::string& path, Exchange& exchange) {
  if (path == "/healthz" || path == "/livez" || path == "/readyz") {
    exchange.respond(HttpResponse::text("ok"));
    return true;
  }
  if (path == "/dashboard" || path == "/dashboard/") {
    HttpResponse page = HttpResponse::text(dashboardPage());
    page.contentType = "text/html; charset=utf-8";
    exchange.respond(std::move(page));
    return true;
  }
  return false;
}

}  // namespace agora::kube
