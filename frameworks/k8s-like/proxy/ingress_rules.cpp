#include "frameworks/k8s-like/proxy/ingress_rules.hpp"

#include <algorithm>
#include <cstring>

#include "frameworks/k8s-like/apiserver/objects.hpp"

namespace agora::kube {

using nlohmann::json;

namespace {

const json& arrayOr(const json& object, const char* field) {
  static const json kNone = json::array();
  return object.is_object() && object.contains(field) && object[field].is_array() ? object[field]
                                                                                  : kNone;
}

// The items of a list, or none (a reference: what is kept from them stays valid).
const json& listOf(const json& list) {
  static const json kNone = json::array();
  return list.is_array() ? list : kNone;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trimSlash(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path.empty() ? "/" : path;
}

// Does `prefix` (no trailing slash) cover `path`, element by element?
bool prefixCovers(const std::string& prefix, std::string_view path) {
  if (prefix == "/") return true;
  if (path.compare(0, prefix.size(), prefix) != 0) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

class Resolver {
 public:
  Resolver(const json& services, const json& endpoints) {
    for (const json& s : listOf(services)) {
      if (!s.is_object()) continue;
      const json meta = s.value("metadata", json::object());
      services_[stringField(meta, "namespace") + "/" + stringField(meta, "name")] = s;
    }
    for (const json& e : listOf(endpoints)) {
      if (!e.is_object()) continue;
      const json meta = e.value("metadata", json::object());
      endpoints_[stringField(meta, "namespace") + "/" + stringField(meta, "name")] = e;
    }
  }

  // An Ingress backend ({service: {name, port: {number|name}}}) in `ns`.
  std::optional<IngressBackend> resolve(const std::string& ns, const json& backend) const {
    const json service = backend.is_object() ? backend.value("service", json()) : json();
    if (!service.is_object()) return std::nullopt;
    std::string key = ns + "/" + stringField(service, "name");
    const json port = service.value("port", json::object());
    IngressBackend out;
    int number = port.is_object() && port.contains("number") && port["number"].is_number_integer()
                     ? port["number"].get<int>() : 0;
    std::string portName = stringField(port, "name");
    out.service = key + ":" + (portName.empty() ? std::to_string(number) : portName);
    auto s = services_.find(key);
    if (s == services_.end()) return out;  // no such Service: 503 until there is
    // The Service's port, and the name its endpoints' port has.
    std::optional<std::string> endpointPort;
    const json spec = s->second.value("spec", json::object());
    for (const json& p : arrayOr(spec, "ports")) {
      bool matches = portName.empty() ? p.value("port", 0) == number : stringField(p, "name") == portName;
      if (matches) endpointPort = stringField(p, "name");
    }
    if (!endpointPort) return out;
    auto e = endpoints_.find(key);
    if (e == endpoints_.end()) return out;
    for (const json& subset : arrayOr(e->second, "subsets")) {
      for (const json& ep : arrayOr(subset, "ports")) {
        if (stringField(ep, "name") != *endpointPort || !ep.contains("port") ||
            !ep["port"].is_number_integer()) {
          continue;
        }
        int target = ep["port"].get<int>();
        if (target <= 0 || target > 65535) continue;
        for (const json& a : arrayOr(subset, "addresses")) {
          if (!stringField(a, "ip").empty()) {
            out.endpoints.push_back({stringField(a, "ip"), static_cast<uint16_t>(target)});
          }
        }
      }
    }
    std::sort(out.endpoints.begin(), out.endpoints.end());
    return out;
  }

 private:
  std::map<std::string, json> services_;
  std::map<std::string, json> endpoints_;
};

}  // namespace

bool ingressIsOurs(const json& ingress, const std::string& className) {
  if (!ingress.is_object()) return false;
  const json spec = ingress.value("spec", json::object());
  std::string wanted = stringField(spec, "ingressClassName");
  if (wanted.empty()) {
    wanted = stringField(ingress.value("metadata", json::object()).value("annotations", json::object()),
                 "kubernetes.io/ingress.class");
  }
  return wanted.empty() || wanted == className;
}

IngressTable ingressRules(const json& ingresses, const json& services, const json& endpoints,
                          const json& secrets, const std::string& className) {
  IngressTable table;
  Resolver resolver(services, endpoints);
  std::map<std::string, json> secretsByKey;
  for (const json& s : listOf(secrets)) {
    if (!s.is_object()) continue;
    const json meta = s.value("metadata", json::object());
    secretsByKey[stringField(meta, "namespace") + "/" + stringField(meta, "name")] = s;
  }
  // Oldest first, so that the first Ingress to claim a path keeps it.
  std::vector<const json*> ordered;
  for (const json& i : listOf(ingresses)) {
    if (ingressIsOurs(i, className)) ordered.push_back(&i);
  }
  auto created = [](const json* i) {
    return std::make_pair(stringField((*i)["metadata"], "creationTimestamp"), stringField((*i)["metadata"], "name"));
  };
  std::stable_sort(ordered.begin(), ordered.end(),
                   [&](const json* a, const json* b) { return created(a) < created(b); });
  for (const json* ingress : ordered) {
    try {
      const json meta = ingress->value("metadata", json::object());
      const json spec = ingress->value("spec", json::object());
      std::string ns = stringField(meta, "namespace");
      if (spec.contains("defaultBackend") && !table.defaultBackend) {
        table.defaultBackend = resolver.resolve(ns, spec["defaultBackend"]);
      }
      for (const json& rule : arrayOr(spec, "rules")) {
        std::string host = lower(stringField(rule, "host"));
        auto& paths = table.hosts[host];
        const json http = rule.value("http", json::object());
        for (const json& p : arrayOr(http, "paths")) {
          auto backend = resolver.resolve(ns, p.value("backend", json()));
          if (!backend) continue;
          IngressPath entry;
          entry.exact = stringField(p, "pathType") == "Exact";
          std::string written = stringField(p, "path").empty() ? "/" : stringField(p, "path");
          entry.path = entry.exact ? written : trimSlash(written);
          entry.backend = *backend;
          bool taken = std::any_of(paths.begin(), paths.end(), [&](const IngressPath& q) {
            return q.path == entry.path && q.exact == entry.exact;
          });
          if (!taken) paths.push_back(std::move(entry));
        }
      }
      for (const json& tls : arrayOr(spec, "tls")) {
        auto secret = secretsByKey.find(ns + "/" + stringField(tls, "secretName"));
        if (secret == secretsByKey.end()) continue;
        const json data = secret->second.value("data", json::object());
        auto cert = base64Decode(stringField(data, "tls.crt"));
        auto key = base64Decode(stringField(data, "tls.key"));
        if (!cert || !key || cert->empty() || key->empty()) continue;
        TlsCertificate certificate{*cert, *key};
        for (const json& h : arrayOr(tls, "hosts")) {
          if (h.is_string()) table.certificates.emplace(lower(h.get<std::string>()), certificate);
        }
        table.certificates.emplace("", certificate);
      }
    } catch (const json::exception&) {
      continue;  // a malformed Ingress is left out; the others are served
    }
  }
  return table;
}

const IngressBackend* IngressTable::route(std::string_view rawHost,
                                          std::string_view target) const {
  // The host without its port ("[::1]:80" is "[::1]"), in lower case.
  std::string_view name = rawHost;
  if (size_t close = name.find(']'); !name.empty() && name.front() == '[' && close != name.npos) {
    name = name.substr(0, close + 1);
  } else if (size_t colon = name.rfind(':'); colon != name.npos) {
    name = name.substr(0, colon);
  }
  char lowered[256];
  std::string longName;
  std::string_view host;
  if (name.size() <= sizeof(lowered)) {
    for (size_t i = 0; i < name.size(); ++i) {
      lowered[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
    }
    host = {lowered, name.size()};
  } else {
    longName = lower(std::string(name));
    host = longName;
  }
  std::string_view path = target.substr(0, target.find_first_of("?#"));
  std::string rooted;
  if (path.empty() || path.front() != '/') {
    rooted = "/" + std::string(path);
    path = rooted;
  }
  // Its own rules, else a wildcard's covering its first label, else those without a host.
  char wildcard[257];
  std::string_view candidates[3];
  size_t count = 0;
  candidates[count++] = host;
  if (size_t dot = host.find('.'); dot != host.npos && host.size() - dot < sizeof(wildcard)) {
    wildcard[0] = '*';
    std::memcpy(wildcard + 1, host.data() + dot, host.size() - dot);
    candidates[count++] = {wildcard, host.size() - dot + 1};
  }
  candidates[count++] = {};
  for (size_t i = 0; i < count; ++i) {
    auto it = hosts.find(candidates[i]);
    if (it == hosts.end()) continue;
    const IngressPath* best = nullptr;
    for (const IngressPath& p : it->second) {
      bool matches = p.exact ? p.path == path : prefixCovers(p.path, path);
      if (!matches) continue;
      if (best == nullptr || p.path.size() > best->path.size() ||
          (p.path.size() == best->path.size() && p.exact && !best->exact)) {
        best = &p;
      }
    }
    if (best != nullptr) return &best->backend;
    break;  // the host's own rules, and no other host's, decide
  }
  return defaultBackend ? &*defaultBackend : nullptr;
}

const TlsCertificate* IngressTable::certificateFor(const std::string& rawHost) const {
  std::string host = lower(rawHost);
  auto it = certificates.find(host);
  if (it == certificates.end() && host.find('.') != std::string::npos) {
    it = certificates.find("*" + host.substr(host.find('.')));
  }
  if (it == certificates.end()) it = certificates.find("");
  return it == certificates.end() ? nullptr : &it->second;
}

}  // namespace agora::kube
