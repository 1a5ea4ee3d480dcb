// ACLs, CURVE credentials files, and a master that holds peers to their principals.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/acls.hpp"
#include "common/certs.hpp"
#include "common/curve.hpp"
#include "common/fs.hpp"
#include "common/http_tokens.hpp"
#include "common/manual_loop.hpp"
#include "common/resources.hpp"
#include "common/tls.hpp"
#include "master/allocator/hierarchical_allocator.hpp"
#include "master/master.hpp"
#include "tests/support/fake_transport.hpp"
#include "tests/support/temp_dir.hpp"

namespace agora {
namespace {

TEST(AclsTest, WithoutAclsEverythingIsAllowed) {
  Acls acls;
  EXPECT_FALSE(acls.enabled());
  EXPECT_TRUE(acls.allows(AclAction::kRegisterAgents, ""));
  EXPECT_TRUE(acls.allows(AclAction::kRunTasks, "anyone", "root"));
}

TEST(AclsTest, TheFirstMatchingRuleDecidesAndNoMatchIsRefused) {
  auto acls = Acls::parse(R"(
register_frameworks:
  - principals: [batch]
    roles: [analytics, "analytics/*"]
  - principals: [ANY]
    roles: [sandbox]
run_tasks:
  - principals: [ANY]
    users: [root]
    allow: false
  - principals: [batch, kube]
    users: [ANY]
register_agents:
  - principals: agent
)");
  ASSERT_TRUE(acls.ok()) << acls.error();
  EXPECT_TRUE(acls->enabled());
  EXPECT_FALSE(acls->permissive());
  EXPECT_TRUE(acls->allows(AclAction::kRegisterFrameworks, "batch", "analytics"));
  EXPECT_TRUE(acls->allows(AclAction::kRegisterFrameworks, "batch", "analytics/etl"));
  EXPECT_TRUE(acls->allows(AclAction::kRegisterFrameworks, "batch", "analytics/etl/nightly"));
  EXPECT_FALSE(acls->allows(AclAction::kRegisterFrameworks, "batch", "analyticsx"));
  EXPECT_FALSE(acls->allows(AclAction::kRegisterFrameworks, "batch", "services"));
  EXPECT_TRUE(acls->allows(AclAction::kRegisterFrameworks, "", "sandbox"));  // ANY: anonymous too
  EXPECT_FALSE(acls->allows(AclAction::kRegisterFrameworks, "kube", "*"));
  // A deny rule first: no one runs as root, whatever a later rule says.
  EXPECT_FALSE(acls->allows(AclAction::kRunTasks, "batch", "root"));
  EXPECT_TRUE(acls->allows(AclAction::kRunTasks, "batch", "nobody"));
  EXPECT_FALSE(acls->allows(AclAction::kRunTasks, "tenant", "nobody"));
  EXPECT_TRUE(acls->allows(AclAction::kRegisterAgents, "agent"));
  EXPECT_FALSE(acls->allows(AclAction::kRegisterAgents, "batch"));
  // Actions without rules are refused...
  EXPECT_FALSE(acls->allows(AclAction::kSetQuota, "batch", "analytics"));
  EXPECT_FALSE(acls->allows(AclAction::kViewState, ""));
  // ...unless the ACLs are permissive.
  auto permissive = Acls::parse(R"({"permissive": true,
                                    "run_tasks": [{"principals": ["ANY"], "users": ["root"],
                                                   "allow": false}]})");
  ASSERT_TRUE(permissive.ok()) << permissive.error();
  EXPECT_TRUE(permissive->allows(AclAction::kSetQuota, "batch", "analytics"));
  EXPECT_FALSE(permissive->allows(AclAction::kRunTasks, "batch", "root"));
  EXPECT_TRUE(permissive->allows(AclAction::kRunTasks, "batch", "nobody"));
}

TEST(AclsTest, BadAclsAreRefusedWithTheReason) {
  auto error = [](const std::string& text) {
    auto acls = Acls::parse(text);
    return acls.ok() ? std::string("(parsed)") : acls.error();
  };
  EXPECT_NE(error("registr_agents: []").find("unknown action 'registr_agents'"),
            std::string::npos);
  EXPECT_NE(error("run_tasks: [{principals: [a], roles: [x]}]").find("unknown field 'roles'"),
            std::string::npos);
  EXPECT_NE(error("run_tasks: [{users: [x]}]").find("names no 'principals'"), std::string::npos);
  EXPECT_NE(error("run_tasks: [{principals: []}]").find("is empty"), std::string::npos);
  EXPECT_NE(error("run_tasks: [{principals: [a], allow: maybe}]").find("true or false"),
            std::string::npos);
  EXPECT_NE(error("run_tasks: {principals: [a]}").find("must be a list of rules"),
            std::string::npos);
  EXPECT_NE(error("[1, 2]").find("map of actions"), std::string::npos);
  EXPECT_NE(error("{\"run_tasks\": ").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error("a: [b").find("not valid YAML"), std::string::npos);
  EXPECT_NE(error(std::string(5000, '[')).find("not valid YAML"), std::string::npos);
}

TEST(CredentialsTest, KeysAreCheckedAndRoundTrip) {
  CurveKeyPair server = generateCurveKeyPair();
  CurveKeyPair client = generateCurveKeyPair();
  Credentials c;
  c.principal = "agent";
  c.keys = client;
  c.serverKey = server.publicKey;
  auto parsed = parseCredentials(credentialsToJson(c));
  ASSERT_TRUE(parsed.ok()) << parsed.error();
  EXPECT_EQ(parsed->principal, "agent");
  EXPECT_EQ(parsed->keys.publicKey, client.publicKey);
  EXPECT_FALSE(parsed->isServer());

  Credentials master;
  master.keys = server;
  master.clients[client.publicKey] = "agent";
  parsed = parseCredentials(credentialsToJson(master));
  ASSERT_TRUE(parsed.ok()) << parsed.error();
  EXPECT_TRUE(parsed->isServer());
  EXPECT_EQ(parsed->clients.at(client.publicKey), "agent");

  auto error = [](const std::string& text) {
    auto credentials = parseCredentials(text);
    return credentials.ok() ? std::string("(parsed)") : credentials.error();
  };
  std::string mismatched = R"({"principal": "a", "secret_key": ")" + client.secretKey +
                           R"(", "public_key": ")" + server.publicKey +
                           R"(", "master_public_key": ")" + server.publicKey + R"("})";
  EXPECT_NE(error(mismatched).find("does not belong"), std::string::npos);
  EXPECT_NE(error(R"({"principal": "a", "secret_key": "short"})").find("40 characters"),
            std::string::npos);
  std::string noServer = R"({"principal": "a", "secret_key": ")" + client.secretKey + R"("})";
  EXPECT_NE(error(noServer).find("master_public_key"), std::string::npos);
  std::string badClient = R"({"secret_key": ")" + server.secretKey +
                          R"(", "clients": [{"principal": "x", "public_key": "nope"}]})";
  EXPECT_NE(error(badClient).find("not a CURVE key"), std::string::npos);
  EXPECT_NE(error("[]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(error(R"({"secret": 1})").find("unknown field 'secret'"), std::string::npos);
}

TEST(HttpTokensTest, TokensAreCheckedAndFoundByValue) {
  auto tokens = HttpTokens::parse(R"({"tokens": [
      {"token": "0123456789abcdef-admin", "principal": "ops", "scope": "admin"},
      {"token": "0123456789abcdef-read", "principal": "grafana"}]})");
  ASSERT_TRUE(tokens.ok()) << tokens.error();
  EXPECT_EQ(tokens->size(), 2u);
  auto admin = tokens->find("0123456789abcdef-admin");
  ASSERT_TRUE(admin.has_value());
  EXPECT_EQ(admin->principal, "ops");
  EXPECT_TRUE(admin->admin);
  auto read = tokens->find("0123456789abcdef-read");
  ASSERT_TRUE(read.has_value());
  EXPECT_FALSE(read->admin);  // read is the default scope
  EXPECT_FALSE(tokens->find("0123456789abcdef-adm").has_value());
  EXPECT_FALSE(tokens->find("").has_value());

  auto error = [](const std::string& text) {
    auto parsed = HttpTokens::parse(text);
    return parsed.ok() ? std::string("(parsed)") : parsed.error();
  };
  EXPECT_NE(error(R"({"tokens": [{"token": "short", "principal": "a"}]})").find("shorter"),
            std::string::npos);
  EXPECT_NE(error(R"({"tokens": [{"token": "0123456789abcdefgh"}]})").find("principal"),
            std::string::npos);
  EXPECT_NE(error(R"({"tokens": [{"token": "0123456789abcdefgh", "principal": "a",
                                  "scope": "root"}]})").find("read or admin"),
            std::string::npos);
  EXPECT_NE(error(R"({"tokens": []})").find("empty"), std::string::npos);
  EXPECT_NE(error(R"([])").find("list of 'tokens'"), std::string::npos);
  EXPECT_EQ(generateToken().size(), 64u);
  EXPECT_NE(generateToken(), generateToken());
}

TEST(HttpTokensTest, AnEntryWithoutATokenGrantsAScopeToACertificateHolder) {
  auto tokens = HttpTokens::parse(R"({"tokens": [
      {"principal": "backup", "scope": "admin"},
      {"token": "0123456789abcdef-read", "principal": "grafana"},
      {"principal": "grafana", "scope": "read"}]})");
  ASSERT_TRUE(tokens.ok()) << tokens.error();
  EXPECT_FALSE(tokens->find("").has_value());  // no token matches the entries without one
  ASSERT_TRUE(tokens->grantOf("backup").has_value());
  EXPECT_TRUE(tokens->grantOf("backup")->admin);
  ASSERT_TRUE(tokens->grantOf("grafana").has_value());
  EXPECT_FALSE(tokens->grantOf("grafana")->admin);
  EXPECT_FALSE(tokens->grantOf("stranger").has_value());
  // A token given must still be long enough.
  EXPECT_FALSE(HttpTokens::parse(R"({"tokens": [{"token": "", "principal": "a"}]})").ok());
}

TEST(CertificatesTest, AClusterCaSignsServingAndClientCertificates) {
  auto made = makeCertificates({"127.0.0.1", "localhost"}, 1, "agora");
  ASSERT_TRUE(made.ok()) << made.error();
  EXPECT_TRUE(verifyCertificate(made->caCert, made->serverCert, "127.0.0.1").ok());
  EXPECT_FALSE(verifyCertificate(made->caCert, made->serverCert, "127.0.0.9").ok());
  auto server = issueCertificate(made->caCert, made->caKey, "agent-7", CertificateUse::kServer,
                                 {"127.0.0.7", "agent-7.example.com"});
  ASSERT_TRUE(server.ok()) << server.error();
  EXPECT_TRUE(verifyCertificate(made->caCert, server->first, "127.0.0.7").ok());
  EXPECT_TRUE(verifyCertificate(made->caCert, server->first, "agent-7.example.com").ok());
  EXPECT_FALSE(verifyCertificate(made->caCert, server->first, "127.0.0.1").ok());
  auto client = issueCertificate(made->caCert, made->caKey, "ops", CertificateUse::kClient);
  ASSERT_TRUE(client.ok()) << client.error();
  EXPECT_NE(client->second.find("PRIVATE KEY"), std::string::npos);
  EXPECT_FALSE(issueCertificate("not pem", made->caKey, "ops", CertificateUse::kClient).ok());
  // The server side loads a pair only when the key belongs to the certificate.
  TlsServerConfig mismatched{made->serverCert, client->second, ""};
  testing::TempDir dir;
  ASSERT_TRUE(writeFileAtomic(dir.path() + "/c.crt", mismatched.certPem).ok());
  ASSERT_TRUE(writeFileAtomic(dir.path() + "/k.key", mismatched.keyPem).ok());
  auto loaded = loadTlsServerConfig(dir.path() + "/c.crt", dir.path() + "/k.key", "");
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().find("does not belong"), std::string::npos) << loaded.error();
  EXPECT_FALSE(loadTlsServerConfig(dir.path() + "/c.crt", "", "").ok());
}

// The master with CURVE on: principals come from the transport's stamp on each message.
class AuthenticatedMasterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    master::MasterOptions options;
    options.info.set_id("M");
    options.authenticated = true;
    options.acls = *Acls::parse(R"(
register_agents: [{principals: [agent]}]
register_frameworks: [{principals: [batch, other], roles: [ANY]}]
run_tasks: [{principals: [ANY], users: [ANY]}]
)");
    master_ = std::make_unique<master::Master>(
        options, loop_, transport_,
        std::make_unique<master::HierarchicalAllocator>([this] { return loop_.now(); }),
        registry_);
    std::optional<master::RegistryState> recovered;
    registry_.recover([&](Result<master::RegistryState> state) { recovered = *state; });
    loop_.runUntilIdle();
    master_->start(*recovered);
  }

  void deliver(const std::string& from, const std::string& principal, SchedulerCall call) {
    Envelope e;
    *e.mutable_scheduler_call() = std::move(call);
    e.set_authenticated_principal(principal);
    master_->receive(from, std::move(e));
    loop_.runUntilIdle();
  }

  std::vector<SchedulerEvent> events(const std::string& connection) {
    std::vector<SchedulerEvent> out;
    for (Envelope& e : transport_.take(connection)) out.push_back(e.scheduler_event());
    return out;
  }

  ManualLoop loop_;
  testing::FakeTransport transport_;
  master::InMemoryRegistry registry_{loop_};
  std::unique_ptr<master::Master> master_;
};

TEST_F(AuthenticatedMasterTest, APeerWithOtherCredentialsCannotActForAFramework) {
  SchedulerCall subscribe;
  subscribe.mutable_subscribe()->mutable_framework_info()->set_name("batch");
  subscribe.mutable_subscribe()->mutable_framework_info()->set_user("nobody");
  deliver("s1", "batch", subscribe);
  std::vector<SchedulerEvent> got = events("s1");
  ASSERT_FALSE(got.empty());
  ASSERT_TRUE(got[0].has_subscribed());
  std::string id = got[0].subscribed().framework_id();
  EXPECT_EQ(master_->state()["frameworks"][0]["principal"], "batch");

  // Another principal on the framework's routing id (ROUTER_HANDOVER lets a peer take one
  // over): its calls are not the framework's.
  SchedulerCall teardown;
  teardown.set_framework_id(id);
  teardown.mutable_teardown();
  deliver("s1", "other", teardown);
  got = events("s1");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].error().code(), ERROR_NOT_SUBSCRIBED);
  EXPECT_EQ(master_->state()["frameworks"].size(), 1u);

  // Nor can it resubscribe as the framework.
  SchedulerCall takeover = subscribe;
  takeover.mutable_subscribe()->mutable_framework_info()->set_id(id);
  deliver("s2", "other", takeover);
  got = events("s2");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].error().code(), ERROR_UNAUTHORIZED);
  EXPECT_NE(got[0].error().message().find("belongs to principal 'batch'"), std::string::npos);

  // The framework itself still can.
  deliver("s1", "batch", teardown);
  EXPECT_EQ(master_->state()["frameworks"].size(), 0u);
}

TEST_F(AuthenticatedMasterTest, AnAgentIsHeldToItsPrincipal) {
  Envelope e;
  AgentInfo* info = e.mutable_agent_call()->mutable_register_()->mutable_agent_info();
  info->set_hostname("h");
  info->set_address("127.0.0.1:1");
  Resources::parse("cpus:1;mem:64")->copyTo(info->mutable_resources());
  Envelope byFramework = e;
  byFramework.set_authenticated_principal("batch");
  master_->receive("a1", std::move(byFramework));
  loop_.runUntilIdle();
  std::vector<Envelope> got = transport_.take("a1");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].agent_event().error().code(), ERROR_UNAUTHORIZED);
  EXPECT_EQ(master_->state()["agents"].size(), 0u);

  e.set_authenticated_principal("agent");
  master_->receive("a1", std::move(e));
  loop_.runUntilIdle();
  got = transport_.take("a1");
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(got[0].agent_event().has_registered());
  EXPECT_EQ(master_->state()["agents"].size(), 1u);
}

}  // namespace
}  // namespace agora
