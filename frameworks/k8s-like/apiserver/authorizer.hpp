#pragma once

// Who may do what through the kube API: bearer tokens mapped to users, and a minimal
// RBAC-style authoriser with two namespace-scoped roles. Given with `agora kube --users=FILE`
// (YAML or JSON):
//
//   users:
//     - name: alice
//       token: "<at least 16 characters>"
//       groups: [team-a]
//     - name: ci
//       token: "..."
//       admin: true              # may do everything, as the kubeconfig's own token may
//   bindings:
//     - user: alice              # or group: team-a
//       namespace: team-a        # "*": every namespace, and reading cluster-scoped objects
//       role: edit               # view: read everything but Secrets; edit: read and write
//
// Every authenticated user may read discovery (/api, /apis, /version, /openapi) and ask what
// it may do (SelfSubjectAccessReview: `kubectl auth can-i`). Running commands in pods (exec,
// attach, port-forward) is writing.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace agora::kube {

struct KubeUser {
  std::string name;
  std::vector<std::string> groups;
  bool admin = false;
};

// What a request asks, in Kubernetes' terms.
struct AccessAttributes {
  bool resourceRequest = true;
  std::string verb;         // get, list, watch, create, update, patch, delete, deletecollection
  std::string group;        // the API group ("" for core)
  std::string resource;     // plural: pods
  std::string subresource;  // exec, log, status, scale, ...
  std::string ns;           // "" for cluster-scoped, or across namespaces
  std::string name;
  std::string path;         // a non-resource request's path
};

class KubeAuthorizer {
 public:
  static Result<KubeAuthorizer> parse(const std::string& text);
  static Result<KubeAuthorizer> load(const std::string& path);

  // The user of a token (compared in constant time), if any.
  std::optional<KubeUser> authenticate(const std::string& token) const;
  // Whether `user` may; `why` says why not (or which binding allows).
  bool allows(const KubeUser& user, const AccessAttributes& request, std::string* why) const;

 private:
  struct Binding {
    std::string user;
    std::string group;
    std::string ns;  // "*" for all
    bool edit = false;
  };
  std::vector<std::pair<std::string, KubeUser>> tokens_;
  std::vector<Binding> bindings_;
};

// The attributes of an HTTP request to the API (path, method, query).
AccessAttributes accessAttributes(const std::string& method, const std::string& path,
                                  bool watch);

// Kubernetes' message for a refusal: `pods "x" is forbidden: User "alice" cannot get resource
// "pods" in API group "" in the namespace "team-b"`.
std::string forbiddenMessage(const KubeUser& user, const AccessAttributes& request);

}  // namespace agora::kube
