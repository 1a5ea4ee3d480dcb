// The ingress proxy's routing: hosts, Exact and Prefix paths, the default backend, TLS.

#include <gtest/gtest.h>

#include "frameworks/k8s-like/apiserver/objects.hpp"
#include "frameworks/k8s-like/proxy/ingress_rules.hpp"

namespace agora::kube {
namespace {

using nlohmann::json;

json named(const std::string& name, json rest) {
  rest["metadata"] = {{"namespace", "default"}, {"name", name}};
  return rest;
}

json backend(const std::string& service, json port) {
  return {{"service", {{"name", service}, {"port", port}}}};
}

json path(const std::string& p, const std::string& type, const std::string& service) {
  return {{"path", p}, {"pathType", type}, {"backend", backend(service, {{"number", 80}})}};
}

struct Fixture {
  json services = json::array();
  json endpoints = json::array();
  json secrets = json::array();
  json ingresses = json::array();

  void service(const std::string& name, const std::string& ip) {
    services.push_back(named(name, {{"spec", {{"ports", {{{"name", "http"}, {"port", 80}}}}}}}));
    endpoints.push_back(named(name, {{"subsets", {{{"addresses", {{{"ip", ip}}}},
                                                   {"ports", {{{"name", "http"}, {"port", 8080}}}}}}}}));
  }

  IngressTable table() { return ingressRules(ingresses, services, endpoints, secrets); }
};

std::string where(const IngressTable& t, const std::string& host, const std::string& p) {
  const IngressBackend* b = t.route(host, p);
  if (b == nullptr) return "404";
  if (b->endpoints.empty()) return "503 " + b->service;
  return b->endpoints[0].ip;
}

TEST(KubeIngressRules, LongestPathWinsExactBeforePrefixWholeElementsOnly) {
  Fixture f;
  f.service("web", "127.98.0.1");
  f.service("api", "127.98.0.2");
  f.service("v2", "127.98.0.3");
  f.service("exact", "127.98.0.4");
  f.ingresses.push_back(named(
      "site", {{"spec",
                {{"ingressClassName", "agora"},
                 {"rules", {{{"http", {{"paths", {path("/", "Prefix", "web"),
                                                   path("/api", "Prefix", "api"),
                                                   path("/api/v2/", "Prefix", "v2"),
                                                   path("/api", "Exact", "exact")}}}}}}}}}}));
  IngressTable t = f.table();
  EXPECT_EQ(where(t, "any.host", "/"), "127.98.0.1");
  EXPECT_EQ(where(t, "any.host", "/index.html"), "127.98.0.1");
  EXPECT_EQ(where(t, "any.host", "/api"), "127.98.0.4");        // Exact beats Prefix
  EXPECT_EQ(where(t, "any.host", "/api/"), "127.98.0.2");
  EXPECT_EQ(where(t, "any.host", "/api/users?x=1"), "127.98.0.2");
  EXPECT_EQ(where(t, "any.host", "/apiary"), "127.98.0.1");     // not an element of /api
  EXPECT_EQ(where(t, "any.host", "/api/v2"), "127.98.0.3");     // trailing slash ignored
  EXPECT_EQ(where(t, "any.host", "/api/v2/things"), "127.98.0.3");
  EXPECT_EQ(where(t, "any.host", "/api/v20"), "127.98.0.2");
}

TEST(KubeIngressRules, HostsWildcardsDefaultBackendAndMissingServices) {
  Fixture f;
  f.service("a", "127.98.0.1");
  f.service("b", "127.98.0.2");
  f.service("fallback", "127.98.0.9");
  f.ingresses.push_back(named(
      "hosts",
      {{"spec",
        {{"defaultBackend", backend("fallback", {{"name", "http"}})},
         {"rules",
          {{{"host", "a.example.org"}, {"http", {{"paths", {path("/", "Prefix", "a")}}}}},
           {{"host", "*.example.org"}, {"http", {{"paths", {path("/", "Prefix", "b")}}}}},
           {{"host", "gone.example.org"}, {"http", {{"paths", {path("/", "Prefix", "nothing")}}}}},
           {{"host", "only.example.org"}, {"http", {{"paths", {path("/x", "Exact", "a")}}}}}}}}}}));
  // Another controller's Ingress is not ours.
  f.ingresses.push_back(named("other", {{"spec", {{"ingressClassName", "nginx"},
                                                  {"defaultBackend", backend("a", {{"number", 80}})},
                                                  {"rules", {{{"host", "x.org"}, {"http", {{"paths", {path("/", "Prefix", "a")}}}}}}}}}}));
  IngressTable t = f.table();
  EXPECT_EQ(where(t, "a.example.org", "/"), "127.98.0.1");
  EXPECT_EQ(where(t, "A.Example.org:8443", "/"), "127.98.0.1");  // case and port do not matter
  EXPECT_EQ(where(t, "b.example.org", "/"), "127.98.0.2");       // the wildcard
  EXPECT_EQ(where(t, "deep.b.example.org", "/"), "127.98.0.9");  // one label only
  EXPECT_EQ(where(t, "gone.example.org", "/"), "503 default/nothing:80");
  EXPECT_EQ(where(t, "only.example.org", "/y"), "127.98.0.9");   // no path: the default
  EXPECT_EQ(where(t, "x.org", "/"), "127.98.0.9");
  f.ingresses.erase(0);
  EXPECT_EQ(where(f.table(), "a.example.org", "/"), "404");
}

TEST(KubeIngressRules, TlsCertificatesComeFromTheirSecretsByHost) {
  Fixture f;
  f.service("a", "127.98.0.1");
  f.secrets.push_back(named("a-tls", {{"type", "kubernetes.io/tls"},
                                      {"data", {{"tls.crt", base64Encode("CERT-A")},
                                                {"tls.key", base64Encode("KEY-A")}}}}));
  f.secrets.push_back(named("broken", {{"data", {{"tls.crt", "!!!"}}}}));
  f.ingresses.push_back(named(
      "secure", {{"spec", {{"tls", {{{"hosts", {"a.example.org"}}, {"secretName", "a-tls"}},
                                    {{"hosts", {"b.example.org"}}, {"secretName", "broken"}},
                                    {{"hosts", {"c.example.org"}}, {"secretName", "missing"}}}},
                           {"rules", {{{"host", "a.example.org"},
                                       {"http", {{"paths", {path("/", "Prefix", "a")}}}}}}}}}}));
  IngressTable t = f.table();
  ASSERT_NE(t.certificateFor("a.example.org"), nullptr);
  EXPECT_EQ(t.certificateFor("a.example.org")->certPem, "CERT-A");
  EXPECT_EQ(t.certificateFor("A.EXAMPLE.ORG")->keyPem, "KEY-A");
  // Unknown names get the first certificate, as ingress controllers' default one.
  ASSERT_NE(t.certificateFor("b.example.org"), nullptr);
  EXPECT_EQ(t.certificateFor("b.example.org")->certPem, "CERT-A");
  EXPECT_EQ(ingressRules(json::array(), json(), json(), json()).certificateFor("x"), nullptr);
  // Garbage is skipped.
  EXPECT_TRUE(ingressRules(json::array({json(1), json::object()}), json(1), json("x"), json())
                  .hosts.empty());
}

}  // namespace
}  // namespace agora::kube
