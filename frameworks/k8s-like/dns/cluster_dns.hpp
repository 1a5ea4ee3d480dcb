#pragma once

// The cluster's DNS, run by the kube framework: SERVICE.NAMESPACE.svc.cluster.local answers A
// with the ClusterIP (with the ready pods' addresses for a headless Service, a CNAME for an
// ExternalName one), _PORT._PROTO.SERVICE.NAMESPACE.svc.cluster.local answers SRV for named
// ports, and POD-IP-WITH-DASHES.NAMESPACE.pod.cluster.local answers A. Names outside the
// cluster's domain are refused (there is no upstream to forward to). It listens on UDP; pods
// reach it through the kube-dns Service, whose endpoint it is.
//
// The zone is rebuilt on the API's loop when Services or Endpoints change, and answered from
// a thread of its own.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "frameworks/k8s-like/apiserver/api_server.hpp"

namespace agora::kube {

namespace dns {
constexpr uint16_t kA = 1;
constexpr uint16_t kCname = 5;
constexpr uint16_t kAaaa = 28;
constexpr uint16_t kSrv = 33;
constexpr uint16_t kAny = 255;
constexpr int kNoError = 0;
constexpr int kFormErr = 1;
constexpr int kNxDomain = 3;
constexpr int kRefused = 5;
}  // namespace dns

struct DnsRecord {
  std::string name;  // lower case, no trailing dot
  uint16_t type = dns::kA;
  std::string value;  // A: the address; CNAME: the name; SRV: "priority weight port target"
};

// Names (lower case) -> their records; a name with no records of a type answers NODATA.
using DnsZone = std::map<std::string, std::vector<DnsRecord>>;

// The zone for these Services and Endpoints (the items of their lists).
DnsZone buildZone(const nlohmann::json& services, const nlohmann::json& endpoints,
                  const std::string& domain = "cluster.local");

// The answer to a query packet from `zone`, or nothing for what must not be answered (not a
// query). Truncated (TC) past 512 bytes.
std::optional<std::string> answerQuery(const std::string& packet, const DnsZone& zone,
                                       const std::string& domain = "cluster.local");

// A query packet, for tests and probes.
std::string makeQuery(uint16_t id, const std::string& name, uint16_t type);

// What a response packet says: its rcode and its answers.
struct DnsReply {
  uint16_t id = 0;
  int rcode = 0;
  bool truncated = false;
  std::vector<DnsRecord> answers;
};
Result<DnsReply> parseReply(const std::string& packet);

class ClusterDns {
 public:
  ClusterDns(ApiServer* api, std::string domain = "cluster.local");
  ~ClusterDns();
  ClusterDns(const ClusterDns&) = delete;
  ClusterDns& operator=(const ClusterDns&) = delete;

  // On the loop: watches Services and Endpoints and starts answering on ip:port (0: any).
  Result<uint16_t> start(const std::string& ip, uint16_t port);
  void stop();

  // The Service kube-system/kube-dns (at `clusterIP` if free, else any) and its Endpoints,
  // this server at ip:port. Returns the Service's ClusterIP: the pods' nameserver.
  Result<std::string> publish(const std::string& clusterIP, const std::string& ip, uint16_t port);

  uint64_t queries() const { return queries_; }

 private:
  void rebuild();
  void serve();

  ApiServer* api_;
  std::string domain_;
  uint64_t serviceWatch_ = 0;
  uint64_t endpointsWatch_ = 0;
  bool queued_ = false;
  std::mutex mutex_;
  std::shared_ptr<const DnsZone> zone_ = std::make_shared<DnsZone>();
  int fd_ = -1;
  int wake_ = -1;
  std::thread thread_;
  std::atomic<uint64_t> queries_{0};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace agora::kube
