// The service proxy's rules: what a node listens on and where it sends what comes.

#include <gtest/gtest.h>

#include "frameworks/k8s-like/proxy/kernel_rules.hpp"
#include "frameworks/k8s-like/proxy/proxy_rules.hpp"

namespace agora::kube {
namespace {

using nlohmann::json;

json service(const std::string& name, json spec, json status = json::object()) {
  return {{"metadata", {{"namespace", "default"}, {"name", name}}},
          {"spec", spec},
          {"status", status}};
}

json endpoints(const std::string& name, json subsets) {
  return {{"metadata", {{"namespace", "default"}, {"name", name}}}, {"subsets", subsets}};
}

std::string describe(const Frontend& f) {
  std::string out = f.key() + " ->";
  for (const Backend& b : f.backends) out += " " + b.ip + ":" + std::to_string(b.port);
  if (f.affinitySeconds > 0) out += " sticky " + std::to_string(f.affinitySeconds);
  return out;
}

std::vector<std::string> describe(const std::vector<Frontend>& rules) {
  std::vector<std::string> out;
  for (const Frontend& f : rules) out.push_back(describe(f));
  return out;
}

TEST(KubeProxyRules, ClusterIpsNodePortsAndLoadBalancersGoToReadyEndpoints) {
  json services = json::array({
      service("web", {{"clusterIP", "127.96.0.5"},
                      {"ports", {{{"name", "http"}, {"port", 80}, {"targetPort", "http"}},
                                 {{"name", "dns"}, {"port", 53}, {"protocol", "UDP"}}}}}),
      service("front", {{"type", "NodePort"},
                        {"clusterIP", "127.96.0.6"},
                        {"ports", {{{"port", 8080}, {"nodePort", 30080}}}}}),
      service("lb", {{"type", "LoadBalancer"},
                     {"clusterIP", "127.96.0.7"},
                     {"sessionAffinity", "ClientIP"},
                     {"ports", {{{"port", 443}, {"nodePort", 30443}}}}},
              {{"loadBalancer", {{"ingress", {{{"ip", "127.97.0.1"}}}}}}}),
      service("headless", {{"clusterIP", "None"}, {"ports", {{{"port", 80}}}}}),
      service("external", {{"type", "ExternalName"}, {"externalName", "example.org"}}),
  });
  json eps = json::array({
      endpoints("web", {{{"addresses", {{{"ip", "127.98.0.2"}}, {{"ip", "127.98.0.1"}}}},
                         {"notReadyAddresses", {{{"ip", "127.98.0.3"}}}},
                         {"ports", {{{"name", "http"}, {"port", 8000}},
                                    {{"name", "dns"}, {"port", 5353}, {"protocol", "UDP"}}}}}}),
      endpoints("front", {{{"addresses", {{{"ip", "127.98.0.4"}}}}, {"ports", {{{"port", 80}}}}}}),
      endpoints("headless", {{{"addresses", {{{"ip", "127.98.0.9"}}}}, {"ports", {{{"port", 80}}}}}}),
  });
  EXPECT_EQ(describe(proxyRules(services, eps, {"127.0.0.1", true})),
            (std::vector<std::string>{
                "TCP 127.0.0.1:30080 -> 127.98.0.4:80",
                "TCP 127.0.0.1:30443 -> sticky 10800",
                "TCP 127.96.0.5:80 -> 127.98.0.1:8000 127.98.0.2:8000",
                "TCP 127.96.0.6:8080 -> 127.98.0.4:80",
                "TCP 127.96.0.7:443 -> sticky 10800",
                "TCP 127.97.0.1:443 -> sticky 10800",
                "UDP 127.96.0.5:53 -> 127.98.0.1:5353 127.98.0.2:5353",
            }));
  // A node that does not serve load balancers leaves their addresses alone.
  auto rules = proxyRules(services, eps, {"127.0.0.1", false});
  for (const Frontend& f : rules) EXPECT_NE(f.ip, "127.97.0.1");
  EXPECT_EQ(rules.size(), 6u);
}

TEST(KubeProxyRules, AffinityTimeoutsAndBadInputAreHandled) {
  json services = json::array({
      service("a", {{"clusterIP", "127.96.0.8"},
                    {"sessionAffinity", "ClientIP"},
                    {"sessionAffinityConfig", {{"clientIP", {{"timeoutSeconds", 60}}}}},
                    {"ports", {{{"port", 80}}}}}),
      // The same address and port claimed twice: the first keeps it.
      service("b", {{"clusterIP", "127.96.0.8"}, {"ports", {{{"port", 80}}}}}),
      service("c", {{"clusterIP", "127.96.0.9"}, {"ports", {{{"port", 0}}, {{"port", "x"}}}}}),
      service("d", {{"clusterIP", 7}}),
      json("not an object"),
  });
  json eps = json::array({endpoints("a", {{{"addresses", {{{"ip", "not an ip"}}}},
                                           {"ports", {{{"port", 80}}}}}}),
                          json::array()});
  EXPECT_EQ(describe(proxyRules(services, eps, {"127.0.0.1", true})),
            (std::vector<std::string>{"TCP 127.96.0.8:80 -> sticky 60"}));
  EXPECT_TRUE(proxyRules(json::object(), json(), {"127.0.0.1", true}).empty());
}

TEST(KubeProxyRules, KernelRulesPickEndpointsEvenlyAndRememberClients) {
  Frontend plain;
  plain.protocol = "TCP";
  plain.ip = "127.96.0.5";
  plain.port = 80;
  plain.service = "default/web:http";
  plain.backends = {{"127.98.0.1", 8000}, {"127.98.0.2", 8000}, {"127.98.0.3", 8000}};
  Frontend sticky = plain;
  sticky.protocol = "UDP";
  sticky.port = 53;
  sticky.service = "default/dns:dns";
  sticky.affinitySeconds = 60;
  sticky.backends = {{"127.98.0.7", 5353}, {"127.98.0.8", 5353}};
  Frontend empty = plain;
  empty.port = 81;
  empty.backends.clear();
  std::set<std::string> made;
  std::string text = kernelRulesText({plain, sticky, empty}, "AGORA-T", {"AGORA-T-0", "AGORA-T-9"},
                                     &made);
  EXPECT_EQ(made, (std::set<std::string>{"AGORA-T-0", "AGORA-T-1"}));
  std::string m = "-d 127.96.0.5/32 -p tcp -m tcp --dport 80 -m comment --comment \"default/web:http\"";
  std::string u = "-d 127.96.0.5/32 -p udp -m udp --dport 53 -m comment --comment \"default/dns:dns\"";
  EXPECT_EQ(text,
            "*nat\n"
            ":AGORA-T - [0:0]\n"
            ":AGORA-T-0 - [0:0]\n"
            ":AGORA-T-1 - [0:0]\n"
            ":AGORA-T-9 - [0:0]\n"
            "-A AGORA-T " + m + " -m statistic --mode random --probability 0.33333 -j DNAT --to-destination 127.98.0.1:8000\n"
            "-A AGORA-T " + m + " -m statistic --mode random --probability 0.50000 -j DNAT --to-destination 127.98.0.2:8000\n"
            "-A AGORA-T " + m + " -j DNAT --to-destination 127.98.0.3:8000\n"
            "-A AGORA-T-0 -p udp -m recent --name AGORA-T-0 --set --rsource -j DNAT --to-destination 127.98.0.7:5353\n"
            "-A AGORA-T " + u + " -m recent --name AGORA-T-0 --rcheck --seconds 60 --reap --rsource -j AGORA-T-0\n"
            "-A AGORA-T-1 -p udp -m recent --name AGORA-T-1 --set --rsource -j DNAT --to-destination 127.98.0.8:5353\n"
            "-A AGORA-T " + u + " -m recent --name AGORA-T-1 --rcheck --seconds 60 --reap --rsource -j AGORA-T-1\n"
            "-A AGORA-T " + u + " -m statistic --mode random --probability 0.50000 -j AGORA-T-0\n"
            "-A AGORA-T " + u + " -j AGORA-T-1\n"
            "-X AGORA-T-9\n"
            "COMMIT\n");
}

}  // namespace
}  // namespace agora::kube
