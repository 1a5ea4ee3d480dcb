#pragma once

// What the ingress proxy routes, from the API's Ingresses (class `agora`, or none given), the
// Services they name and those Services' ready endpoints, and the TLS Secrets they use. Pure,
// so it is tested without sockets; the ingress proxy (ingress_proxy.hpp) serves it.
//
// Matching is Kubernetes': the rules of the request's host if there are any, else a wildcard
// host's (*.example.org covers one label), else the rules without a host; among their paths the longest
// match wins, Exact before Prefix at the same length; Prefix matches whole path elements
// (/api covers /api and /api/v1, not /apiary). Nothing matching: the default backend, if any.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "frameworks/k8s-like/proxy/proxy_rules.hpp"

namespace agora::kube {

struct IngressBackend {
  std::string service;  // "ns/name:port", for logs and errors
  std::vector<Backend> endpoints;  // sorted; empty: 503
};

struct IngressPath {
  std::string path;  // Prefix: without a trailing slash (but "/" stays)
  bool exact = false;
  IngressBackend backend;
};

struct TlsCertificate {
  std::string certPem;
  std::string keyPem;
};

struct IngressTable {
  // Host ("" for rules without one; "*.x.org" wildcards) -> its paths, from every Ingress.
  std::map<std::string, std::vector<IngressPath>, std::less<>> hosts;
  std::optional<IngressBackend> defaultBackend;
  // Host -> certificate (the spec.tls entries); "" is the one for clients that name no host
  // this table knows.
  std::map<std::string, TlsCertificate> certificates;

  // The backend for a request (its Host header, with or without a port, and its target), or
  // null (404). Allocates nothing for the usual request.
  const IngressBackend* route(std::string_view host, std::string_view target) const;
  // The certificate for a TLS client naming `host` (SNI), or null.
  const TlsCertificate* certificateFor(const std::string& host) const;
};

IngressTable ingressRules(const nlohmann::json& ingresses, const nlohmann::json& services,
                          const nlohmann::json& endpoints, const nlohmann::json& secrets,
                          const std::string& className = "agora");

// The Ingresses this controller serves: class `className`, or none given.
bool ingressIsOurs(const nlohmann::json& ingress, const std::string& className = "agora");

}  // namespace agora::kube
