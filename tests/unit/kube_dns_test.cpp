// The cluster's DNS: the zone from Services and Endpoints, and answers on the wire.

#include <gtest/gtest.h>

#include "frameworks/k8s-like/dns/cluster_dns.hpp"

namespace agora::kube {
namespace {

using nlohmann::json;

json service(const std::string& ns, const std::string& name, json spec) {
  return {{"metadata", {{"namespace", ns}, {"name", name}}}, {"spec", spec}};
}

DnsZone zone() {
  json services = json::array({
      service("default", "backend",
              {{"clusterIP", "127.96.0.5"},
               {"ports", {{{"name", "http"}, {"port", 80}}, {{"name", "dns"}, {"port", 53},
                                                              {"protocol", "UDP"}}}}}),
      service("db", "postgres", {{"clusterIP", "None"}, {"ports", {{{"name", "sql"}, {"port", 5432}}}}}),
      service("default", "ext", {{"type", "ExternalName"}, {"externalName", "db.example.org"}}),
      json(42),
  });
  json endpoints = json::array({
      {{"metadata", {{"namespace", "db"}, {"name", "postgres"}}},
       {"subsets", {{{"addresses", {{{"ip", "127.98.0.7"}}, {{"ip", "127.98.0.8"}, {"hostname", "pg-0"}}}},
                     {"notReadyAddresses", {{{"ip", "127.98.0.9"}}}},
                     {"ports", {{{"name", "sql"}, {"port", 5432}}}}}}}},
  });
  return buildZone(services, endpoints);
}

DnsReply ask(const std::string& name, uint16_t type) {
  auto packet = answerQuery(makeQuery(77, name, type), zone());
  EXPECT_TRUE(packet.has_value());
  auto reply = parseReply(packet.value_or(""));
  EXPECT_TRUE(reply) << reply.error();
  EXPECT_EQ(reply->id, 77);
  return reply.value_or(DnsReply{});
}

std::vector<std::string> values(const DnsReply& reply) {
  std::vector<std::string> out;
  for (const auto& r : reply.answers) out.push_back(r.value);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(KubeDns, ServicesAnswerWithTheirClusterIpsPodsAndPorts) {
  DnsReply a = ask("backend.default.svc.cluster.local", dns::kA);
  EXPECT_EQ(a.rcode, dns::kNoError);
  EXPECT_EQ(values(a), std::vector<std::string>{"127.96.0.5"});
  // Case does not matter; a trailing dot neither.
  EXPECT_EQ(values(ask("Backend.Default.SVC.cluster.local.", dns::kA)),
            std::vector<std::string>{"127.96.0.5"});
  // SRV for named ports.
  EXPECT_EQ(values(ask("_http._tcp.backend.default.svc.cluster.local", dns::kSrv)),
            std::vector<std::string>{"0 100 80 backend.default.svc.cluster.local"});
  EXPECT_EQ(values(ask("_dns._udp.backend.default.svc.cluster.local", dns::kSrv)),
            std::vector<std::string>{"0 100 53 backend.default.svc.cluster.local"});
  // Headless: the ready pods, each with a name of its own.
  EXPECT_EQ(values(ask("postgres.db.svc.cluster.local", dns::kA)),
            (std::vector<std::string>{"127.98.0.7", "127.98.0.8"}));
  EXPECT_EQ(values(ask("pg-0.postgres.db.svc.cluster.local", dns::kA)),
            std::vector<std::string>{"127.98.0.8"});
  EXPECT_EQ(values(ask("_sql._tcp.postgres.db.svc.cluster.local", dns::kSrv)),
            (std::vector<std::string>{"0 100 5432 127-98-0-7.postgres.db.svc.cluster.local",
                                      "0 100 5432 pg-0.postgres.db.svc.cluster.local"}));
  // ExternalName: a CNAME.
  DnsReply cname = ask("ext.default.svc.cluster.local", dns::kA);
  EXPECT_EQ(values(cname), std::vector<std::string>{"db.example.org"});
  EXPECT_EQ(cname.answers[0].type, dns::kCname);
}

TEST(KubeDns, UnknownNamesAndBadPacketsGetTheRightErrors) {
  EXPECT_EQ(ask("nothing.default.svc.cluster.local", dns::kA).rcode, dns::kNxDomain);
  // The search path's tries: NXDOMAIN, so the resolver goes on.
  EXPECT_EQ(ask("backend.default.svc.cluster.local.default.svc.cluster.local", dns::kA).rcode,
            dns::kNxDomain);
  // A name that exists without records of that type: NODATA.
  DnsReply aaaa = ask("backend.default.svc.cluster.local", dns::kAaaa);
  EXPECT_EQ(aaaa.rcode, dns::kNoError);
  EXPECT_TRUE(aaaa.answers.empty());
  DnsReply parent = ask("default.svc.cluster.local", dns::kA);
  EXPECT_EQ(parent.rcode, dns::kNoError);
  EXPECT_TRUE(parent.answers.empty());
  // Outside the cluster's domain: refused (there is no upstream).
  EXPECT_EQ(ask("example.org", dns::kA).rcode, dns::kRefused);
  // Garbage: too short is dropped; a bad name is a format error; responses are not answered.
  EXPECT_FALSE(answerQuery("abc", zone()).has_value());
  std::string bad = makeQuery(5, "backend.default.svc.cluster.local", dns::kA);
  bad[12] = 60;  // a label longer than the packet
  auto reply = parseReply(answerQuery(bad, zone()).value_or(""));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->rcode, dns::kFormErr);
  std::string response = makeQuery(6, "backend.default.svc.cluster.local", dns::kA);
  response[2] = static_cast<char>(0x81);
  EXPECT_FALSE(answerQuery(response, zone()).has_value());
  // A compression loop in the question does not hang it.
  std::string loop = makeQuery(7, "a", dns::kA);
  loop.replace(12, 3, std::string("\xc0\x0c", 2));
  reply = parseReply(answerQuery(loop, zone()).value_or(""));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->rcode, dns::kFormErr);
}

TEST(KubeDns, LargeAnswersAreTruncatedForUdp) {
  json addresses = json::array();
  for (int i = 1; i <= 60; ++i) addresses.push_back({{"ip", "127.98.1." + std::to_string(i)}});
  json services = json::array({service("default", "many", {{"clusterIP", "None"}})});
  json endpoints = json::array({{{"metadata", {{"namespace", "default"}, {"name", "many"}}},
                                 {"subsets", {{{"addresses", addresses}}}}}});
  DnsZone z = buildZone(services, endpoints);
  auto packet = answerQuery(makeQuery(1, "many.default.svc.cluster.local", dns::kA), z);
  ASSERT_TRUE(packet);
  EXPECT_LE(packet->size(), 512u);
  auto reply = parseReply(*packet);
  ASSERT_TRUE(reply);
  EXPECT_TRUE(reply->truncated);
  EXPECT_GT(reply->answers.size(), 5u);
}

}  // namespace
}  // namespace agora::kube
