#pragma once

// Access control lists: which principals may do what, on which objects (roles, users). Given
// to the master with --acls=FILE, JSON or YAML:
//
//   permissive: false              # what a request no rule matches gets (default: refused)
//   register_agents:
//     - principals: [agent]
//   register_frameworks:           # object: each of the framework's roles
//     - principals: [kube]
//       roles: [services]
//     - principals: [batch]
//       roles: [analytics, analytics/*]
//   run_tasks:                     # object: the user a task runs as
//     - principals: [ANY]
//       users: [root]
//       allow: false
//     - principals: [kube, batch]
//       users: [ANY]
//   reserve_resources: ...  create_volumes: ...  set_quota: ...  set_weights: ...   (roles)
//   drain_agents: ...  (machines: hostnames)     view_state: ...  (no objects)
//
// The first rule of an action that matches both the principal and the object decides; a rule
// allows unless it says `allow: false`. "ANY" matches every principal (the anonymous one, "",
// included) or object; a role "a/*" matches a's descendants. A rule without an object list
// matches every object. An action without rules, or a request no rule matches, is refused
// unless `permissive: true`.

#include <array>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace agora {

enum class AclAction {
  kRegisterAgents,
  kRegisterFrameworks,
  kRunTasks,
  kReserveResources,
  kCreateVolumes,
  kSetQuota,
  kSetWeights,
  kDrainAgents,
  kViewState,
};
constexpr size_t kAclActions = 9;

// "register_agents", ...
const char* aclActionName(AclAction action);

class Acls {
 public:
  // Everything allowed: what a master without --acls uses.
  Acls() = default;

  static Result<Acls> parse(const std::string& text);
  static Result<Acls> load(const std::string& path);

  // Whether `principal` ("" for an anonymous peer) may do `action` on `object` (a role, a user,
  // a hostname; "" for actions without one).
  bool allows(AclAction action, const std::string& principal,
              const std::string& object = "") const;
  // Whether any ACLs were given (otherwise everything is allowed).
  bool enabled() const { return enabled_; }
  bool permissive() const { return permissive_; }

 private:
  struct Rule {
    bool allow = true;
    std::vector<std::string> principals;
    std::vector<std::string> objects;  // empty: any
  };

  bool enabled_ = false;
  bool permissive_ = true;
  std::array<std::vector<Rule>, kAclActions> rules_;
};

}  // namespace agora
