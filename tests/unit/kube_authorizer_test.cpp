// The kube API's users and their namespace-scoped roles.

#include <gtest/gtest.h>

#include "frameworks/k8s-like/apiserver/authorizer.hpp"

namespace agora::kube {
namespace {

TEST(KubeAuthorizerTest, RolesAreNamespaceScopedAndViewReadsNoSecrets) {
  auto authorizer = KubeAuthorizer::parse(R"(
users:
  - {name: alice, token: alice-token-0123456789, groups: [team-a]}
  - {name: bob, token: bob-token-0123456789}
  - {name: ops, token: ops-token-0123456789, admin: true}
bindings:
  - {group: team-a, namespace: team-a, role: edit}
  - {user: bob, namespace: "*", role: view}
)");
  ASSERT_TRUE(authorizer.ok()) << authorizer.error();
  auto alice = authorizer->authenticate("alice-token-0123456789");
  auto bob = authorizer->authenticate("bob-token-0123456789");
  auto ops = authorizer->authenticate("ops-token-0123456789");
  ASSERT_TRUE(alice && bob && ops);
  EXPECT_FALSE(authorizer->authenticate("alice-token-012345678").has_value());
  EXPECT_EQ(alice->name, "alice");
  EXPECT_TRUE(ops->admin);

  auto may = [&](const KubeUser& user, const std::string& method, const std::string& path,
                 bool watch = false) {
    std::string why;
    return authorizer->allows(user, accessAttributes(method, path, watch), &why);
  };
  EXPECT_TRUE(may(*alice, "POST", "/apis/apps/v1/namespaces/team-a/deployments"));
  EXPECT_TRUE(may(*alice, "GET", "/api/v1/namespaces/team-a/secrets/s"));
  EXPECT_TRUE(may(*alice, "GET", "/api/v1/namespaces/team-a/pods/p/exec"));
  EXPECT_FALSE(may(*alice, "GET", "/api/v1/namespaces/team-b/pods"));
  EXPECT_FALSE(may(*alice, "GET", "/api/v1/pods"));   // every namespace at once
  EXPECT_FALSE(may(*alice, "GET", "/api/v1/nodes"));  // cluster-scoped
  EXPECT_TRUE(may(*alice, "GET", "/api/v1/namespaces/team-a"));  // its own namespace
  EXPECT_TRUE(may(*alice, "GET", "/apis"));                      // discovery
  EXPECT_FALSE(may(*alice, "GET", "/metrics"));

  EXPECT_TRUE(may(*bob, "GET", "/api/v1/pods", true));  // view everywhere: watch too
  EXPECT_TRUE(may(*bob, "GET", "/api/v1/nodes"));
  EXPECT_FALSE(may(*bob, "GET", "/api/v1/namespaces/team-a/secrets"));
  EXPECT_FALSE(may(*bob, "GET", "/api/v1/namespaces/team-a/pods/p/exec"));
  EXPECT_FALSE(may(*bob, "DELETE", "/api/v1/namespaces/team-a/pods/p"));
  EXPECT_FALSE(may(*bob, "POST", "/api/v1/namespaces"));
  EXPECT_TRUE(may(*ops, "DELETE", "/api/v1/nodes/n"));

  AccessAttributes a = accessAttributes("DELETE", "/api/v1/namespaces/team-b/configmaps", false);
  EXPECT_EQ(a.verb, "deletecollection");
  EXPECT_EQ(forbiddenMessage(*alice, accessAttributes("POST",
                                                      "/api/v1/namespaces/team-b/configmaps",
                                                      false)),
            "configmaps is forbidden: User \"alice\" cannot create resource \"configmaps\" in "
            "API group \"\" in the namespace \"team-b\"");
}

TEST(KubeAuthorizerTest, BadFilesAreRefusedWithTheReason) {
  auto error = [](const std::string& text) {
    auto parsed = KubeAuthorizer::parse(text);
    return parsed.ok() ? std::string("(parsed)") : parsed.error();
  };
  EXPECT_NE(error("users: [{name: a, token: short}]").find("shorter than 16"), std::string::npos);
  EXPECT_NE(error("users: [{token: 0123456789abcdefg}]").find("'name' is required"),
            std::string::npos);
  EXPECT_NE(error("bindings: [{user: a, namespace: x, role: owner}]").find("view or edit"),
            std::string::npos);
  EXPECT_NE(error("bindings: [{namespace: x, role: view}]").find("a 'user' or a 'group'"),
            std::string::npos);
  EXPECT_NE(error("roles: []").find("unknown field 'roles'"), std::string::npos);
  EXPECT_NE(error("users: [{name: a, token: 0123456789abcdefg, admin: yes-please}]")
                .find("true or false"),
            std::string::npos);
  EXPECT_NE(error("users: {name: a}").find("must be a list"), std::string::npos);
}

}  // namespace
}  // namespace agora::kube
