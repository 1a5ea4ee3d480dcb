#include "frameworks/k8s-like/dns/cluster_dns.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

#include <glog/logging.h>

#include "frameworks/k8s-like/apiserver/objects.hpp"

namespace agora::kube {

using nlohmann::json;

namespace {

constexpr uint32_t kTtl = 5;  // short: pods and services come and go
constexpr size_t kMaxUdp = 512;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool isIpv4(const std::string& ip) {
  in_addr a{};
  return ::inet_pton(AF_INET, ip.c_str(), &a) == 1;
}

std::string dashed(std::string ip) {
  for (char& c : ip) {
    if (c == '.' || c == ':') c = '-';
  }
  return ip;
}

void put16(std::string& out, uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v & 0xff);
}

void put32(std::string& out, uint32_t v) {
  put16(out, static_cast<uint16_t>(v >> 16));
  put16(out, static_cast<uint16_t>(v & 0xffff));
}

uint16_t get16(const std::string& s, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(s[at]) << 8) | static_cast<uint8_t>(s[at + 1]));
}

// A name in wire form: length-prefixed labels, then 0.
std::string wireName(const std::string& name) {
  std::string out;
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    std::string label = name.substr(start, dot == std::string::npos ? std::string::npos
                                                                    : dot - start);
    if (label.empty() || label.size() > 63) break;
    out += static_cast<char>(label.size());
    out += label;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  out += '\0';
  return out;
}

// Reads a name at `at` (following compression pointers); advances `at` past it.
std::optional<std::string> readName(const std::string& packet, size_t& at) {
  std::string name;
  size_t pos = at;
  bool jumped = false;
  for (int hops = 0; hops < 64; ++hops) {
    if (pos >= packet.size()) return std::nullopt;
    uint8_t len = static_cast<uint8_t>(packet[pos]);
    if (len == 0) {
      if (!jumped) at = pos + 1;
      return name;
    }
    if ((len & 0xc0) == 0xc0) {
      if (pos + 1 >= packet.size()) return std::nullopt;
      size_t target = static_cast<size_t>(((len & 0x3f) << 8) | static_cast<uint8_t>(packet[pos + 1]));
      if (!jumped) at = pos + 2;
      jumped = true;
      pos = target;
      continue;
    }
    if ((len & 0xc0) != 0 || pos + 1 + len > packet.size()) return std::nullopt;
    if (!name.empty()) name += '.';
    name += packet.substr(pos + 1, len);
    pos += 1 + len;
    if (name.size() > 255) return std::nullopt;
  }
  return std::nullopt;
}

std::string rdata(const DnsRecord& r) {
  std::string out;
  if (r.type == dns::kA) {
    in_addr a{};
    ::inet_pton(AF_INET, r.value.c_str(), &a);
    out.assign(reinterpret_cast<const char*>(&a), 4);
  } else if (r.type == dns::kCname) {
    out = wireName(r.value);
  } else if (r.type == dns::kSrv) {
    std::istringstream in(r.value);
    unsigned priority = 0, weight = 0, port = 0;
    std::string target;
    in >> priority >> weight >> port >> target;
    put16(out, static_cast<uint16_t>(priority));
    put16(out, static_cast<uint16_t>(weight));
    put16(out, static_cast<uint16_t>(port));
    out += wireName(target);
  }
  return out;
}

}  // namespace

DnsZone buildZone(const json& services, const json& endpoints, const std::string& domain) {
  DnsZone zone;
  std::map<std::string, const json*> byService;  // points into `endpoints`
  static const json kNone = json::array();
  for (const json& e : endpoints.is_array() ? endpoints : kNone) {
    if (!e.is_object()) continue;
    const json meta = e.value("metadata", json::object());
    byService[stringField(meta, "namespace") + "/" + stringField(meta, "name")] = &e;
  }
  auto add = [&](const std::string& name, uint16_t type, const std::string& value) {
    zone[lower(name)].push_back({lower(name), type, value});
  };
  for (const json& service : services.is_array() ? services : json::array()) {
    try {
      if (!service.is_object()) continue;
      const json meta = service.value("metadata", json::object());
      const json spec = service.value("spec", json::object());
      std::string ns = stringField(meta, "namespace");
      std::string svc = stringField(meta, "name");
      if (ns.empty() || svc.empty()) continue;
      std::string name = svc + "." + ns + ".svc." + domain;
      zone[lower(name)];  // the name exists, whatever it holds
      std::string type = stringField(spec, "type");
      std::string clusterIP = stringField(spec, "clusterIP");
      if (type == "ExternalName") {
        if (!stringField(spec, "externalName").empty()) add(name, dns::kCname, stringField(spec, "externalName"));
        continue;
      }
      bool headless = clusterIP.empty() || clusterIP == "None";
      if (!headless && isIpv4(clusterIP)) add(name, dns::kA, clusterIP);
      auto found = byService.find(ns + "/" + svc);
      json subsets = found == byService.end() ? json::array()
                                              : found->second->value("subsets", json::array());
      if (!subsets.is_array()) subsets = json::array();
      json ports = spec.value("ports", json::array());
      for (const json& port : ports.is_array() ? ports : json::array()) {
        std::string portName = stringField(port, "name");
        std::string protocol = lower(stringField(port, "protocol").empty() ? "TCP" : stringField(port, "protocol"));
        if (portName.empty() || headless) continue;
        add("_" + portName + "._" + protocol + "." + name, dns::kSrv,
            "0 100 " + std::to_string(port.value("port", 0)) + " " + lower(name));
      }
      if (!headless) continue;
      // Headless: the ready pods themselves, each with a name of its own for SRV.
      for (const json& subset : subsets) {
        if (!subset.is_object()) continue;
        const json addresses = subset.value("addresses", json::array());
        const json endpointPorts = subset.value("ports", json::array());
        for (const json& a : addresses.is_array() ? addresses : json::array()) {
          std::string ip = stringField(a, "ip");
          if (!isIpv4(ip)) continue;
          add(name, dns::kA, ip);
          std::string host = (stringField(a, "hostname").empty() ? dashed(ip) : stringField(a, "hostname")) +
                             "." + name;
          add(host, dns::kA, ip);
          for (const json& p : endpointPorts.is_array() ? endpointPorts : json::array()) {
            if (stringField(p, "name").empty()) continue;
            std::string protocol = lower(stringField(p, "protocol").empty() ? "TCP" : stringField(p, "protocol"));
            add("_" + stringField(p, "name") + "._" + protocol + "." + name, dns::kSrv,
                "0 100 " + std::to_string(p.value("port", 0)) + " " + lower(host));
          }
        }
      }
    } catch (const json::exception&) {
      continue;  // a malformed object is left out; the others are answered
    }
  }
  // The names the others lie under (default.svc.cluster.local) exist too, with no records.
  std::vector<std::string> names;
  for (const auto& [name, records] : zone) names.push_back(name);
  std::string apex = lower(domain);
  for (const std::string& name : names) {
    size_t dot = name.find('.');
    while (dot != std::string::npos && name.size() - dot - 1 > apex.size()) {
      zone[name.substr(dot + 1)];
      dot = name.find('.', dot + 1);
    }
  }
  return zone;
}

std::optional<std::string> answerQuery(const std::string& packet, const DnsZone& zone,
                                       const std::string& domain) {
  if (packet.size() < 12) return std::nullopt;
  uint16_t id = get16(packet, 0);
  uint16_t flags = get16(packet, 2);
  if (flags & 0x8000) return std::nullopt;  // a response, not a query
  uint16_t questions = get16(packet, 4);
  std::string out;
  put16(out, id);
  auto header = [&](int rcode, uint16_t qd, uint16_t an, bool truncated) {
    std::string h;
    put16(h, id);
    uint16_t f = static_cast<uint16_t>(0x8000 | (flags & 0x7800) | 0x0400 | (flags & 0x0100) |
                                       (truncated ? 0x0200 : 0) | (rcode & 0xf));
    put16(h, f);
    put16(h, qd);
    put16(h, an);
    put16(h, 0);
    put16(h, 0);
    return h;
  };
  size_t at = 12;
  auto name = questions == 1 ? readName(packet, at) : std::nullopt;
  if (!name || at + 4 > packet.size() || ((flags >> 11) & 0xf) != 0) {
    return header(dns::kFormErr, 0, 0, false);
  }
  std::string question = packet.substr(12, at + 4 - 12);
  uint16_t qtype = get16(packet, at);
  std::string lname = lower(*name);
  while (!lname.empty() && lname.back() == '.') lname.pop_back();
  std::string suffix = "." + lower(domain);
  if (lname != lower(domain) &&
      (lname.size() < suffix.size() ||
       lname.compare(lname.size() - suffix.size(), suffix.size(), suffix) != 0)) {
    return header(dns::kRefused, 1, 0, false) + question;
  }
  auto found = zone.find(lname);
  if (found == zone.end() && lname != lower(domain)) {
    return header(dns::kNxDomain, 1, 0, false) + question;
  }
  std::string answers;
  uint16_t count = 0;
  bool truncated = false;
  if (found != zone.end()) {  // (the apex itself has no records)
    for (const DnsRecord& r : found->second) {
      bool wanted = qtype == dns::kAny || r.type == qtype ||
                    (r.type == dns::kCname && qtype != dns::kSrv);
      if (!wanted) continue;
      std::string rr = wireName(r.name);
      put16(rr, r.type);
      put16(rr, 1);  // IN
      put32(rr, kTtl);
      std::string data = rdata(r);
      put16(rr, static_cast<uint16_t>(data.size()));
      rr += data;
      if (12 + question.size() + answers.size() + rr.size() > kMaxUdp) {
        truncated = true;
        break;
      }
      answers += rr;
      ++count;
    }
  }
  return header(dns::kNoError, 1, count, truncated) + question + answers;
}

std::string makeQuery(uint16_t id, const std::string& name, uint16_t type) {
  std::string out;
  put16(out, id);
  put16(out, 0x0100);  // recursion desired
  put16(out, 1);
  put16(out, 0);
  put16(out, 0);
  put16(out, 0);
  out += wireName(name);
  put16(out, type);
  put16(out, 1);
  return out;
}

Result<DnsReply> parseReply(const std::string& packet) {
  if (packet.size() < 12) return Error("short DNS packet");
  DnsReply reply;
  reply.id = get16(packet, 0);
  uint16_t flags = get16(packet, 2);
  reply.rcode = flags & 0xf;
  reply.truncated = (flags & 0x0200) != 0;
  uint16_t qd = get16(packet, 4);
  uint16_t an = get16(packet, 6);
  size_t at = 12;
  for (uint16_t i = 0; i < qd; ++i) {
    if (!readName(packet, at) || at + 4 > packet.size()) return Error("bad question");
    at += 4;
  }
  for (uint16_t i = 0; i < an; ++i) {
    auto name = readName(packet, at);
    if (!name || at + 10 > packet.size()) return Error("bad answer");
    DnsRecord r;
    r.name = lower(*name);
    r.type = get16(packet, at);
    uint16_t length = get16(packet, at + 8);
    at += 10;
    if (at + length > packet.size()) return Error("bad answer data");
    if (r.type == dns::kA && length == 4) {
      char text[INET_ADDRSTRLEN];
      ::inet_ntop(AF_INET, packet.data() + at, text, sizeof(text));
      r.value = text;
    } else if (r.type == dns::kCname) {
      size_t p = at;
      r.value = readName(packet, p).value_or("");
    } else if (r.type == dns::kSrv && length >= 7) {
      size_t p = at + 6;
      r.value = std::to_string(get16(packet, at)) + " " + std::to_string(get16(packet, at + 2)) +
                " " + std::to_string(get16(packet, at + 4)) + " " +
                readName(packet, p).value_or("");
    }
    at += length;
    reply.answers.push_back(r);
  }
  return reply;
}

ClusterDns::ClusterDns(ApiServer* api, std::string domain)
    : api_(api), domain_(std::move(domain)) {}

ClusterDns::~ClusterDns() {
  *alive_ = false;
  stop();
  if (serviceWatch_ != 0) api_->store()->cancel(serviceWatch_);
  if (endpointsWatch_ != 0) api_->store()->cancel(endpointsWatch_);
}

Result<uint16_t> ClusterDns::start(const std::string& ip, uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  if (::inet_pton(AF_INET, ip.c_str(), &address.sin_addr) != 1) {
    return Error("'" + ip + "' is not an IPv4 address");
  }
  fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    std::string why = std::strerror(errno);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    return Error("cannot listen for DNS on " + ip + ":" + std::to_string(port) + ": " + why);
  }
  socklen_t length = sizeof(address);
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
  wake_ = ::eventfd(0, EFD_CLOEXEC);
  auto onChange = [this](const WatchEvent&) {
    if (queued_) return;
    queued_ = true;
    std::weak_ptr<bool> alive = alive_;
    api_->loop()->post([this, alive] {
      if (alive.lock()) rebuild();
    });
  };
  const ResourceType& services = *findResource("", "v1", "services");
  const ResourceType& endpoints = *findResource("", "v1", "endpoints");
  serviceWatch_ = api_->store()->watch(services.keyPrefix(), 0, onChange).object.version;
  endpointsWatch_ = api_->store()->watch(endpoints.keyPrefix(), 0, onChange).object.version;
  rebuild();
  thread_ = std::thread([this] { serve(); });
  return ntohs(address.sin_port);
}

Result<std::string> ClusterDns::publish(const std::string& clusterIP, const std::string& ip,
                                        uint16_t port) {
  const ResourceType& services = *findResource("", "v1", "services");
  const ResourceType& endpoints = *findResource("", "v1", "endpoints");
  json ports = json::array({{{"name", "dns"}, {"port", 53}, {"protocol", "UDP"},
                             {"targetPort", port}}});
  ApiOutcome current = api_->get(services, "kube-system", "kube-dns");
  if (!current.ok()) {
    json service = {{"apiVersion", "v1"},
                    {"kind", "Service"},
                    {"metadata",
                     {{"name", "kube-dns"},
                      {"namespace", "kube-system"},
                      {"labels", {{"k8s-app", "kube-dns"}}}}},
                    {"spec", {{"clusterIP", clusterIP}, {"ports", ports}}}};
    current = api_->create(services, "kube-system", service);
    if (!current.ok()) {
      LOG(WARNING) << "kube-dns cannot have " << clusterIP << " (" << current.error->message
                   << "); it takes another address";
      service["spec"].erase("clusterIP");
      current = api_->create(services, "kube-system", service);
    }
  } else if (current.object["spec"].value("ports", json::array()) != ports) {
    json next = current.object;
    next["spec"]["ports"] = ports;
    current = api_->update(services, "kube-system", "kube-dns", next, "", false, true);
  }
  if (!current.ok()) {
    return Error("the kube-dns Service: " + current.error->message);
  }
  json subsets = json::array({{{"addresses", json::array({{{"ip", ip}}})},
                               {"ports", json::array({{{"name", "dns"}, {"port", port},
                                                       {"protocol", "UDP"}}})}}});
  ApiOutcome existing = api_->get(endpoints, "kube-system", "kube-dns");
  ApiOutcome written;
  if (!existing.ok()) {
    written = api_->create(endpoints, "kube-system",
                           {{"apiVersion", "v1"},
                            {"kind", "Endpoints"},
                            {"metadata", {{"name", "kube-dns"}, {"namespace", "kube-system"},
                                          {"labels", {{"k8s-app", "kube-dns"}}}}},
                            {"subsets", subsets}});
  } else {
    json next = existing.object;
    next["subsets"] = subsets;
    written = api_->update(endpoints, "kube-system", "kube-dns", next, "", false, true);
  }
  if (!written.ok()) {
    return Error("the kube-dns Endpoints: " + written.error->message);
  }
  return current.object["spec"].value("clusterIP", "");
}

void ClusterDns::stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  (void)::write(wake_, &one, sizeof(one));
  thread_.join();
  ::close(fd_);
  ::close(wake_);
  fd_ = wake_ = -1;
}

void ClusterDns::rebuild() {
  queued_ = false;
  json services = json::array();
  json endpoints = json::array();
  for (json& s : api_->list(*findResource("", "v1", "services"), "")) services.push_back(std::move(s));
  for (json& e : api_->list(*findResource("", "v1", "endpoints"), "")) {
    endpoints.push_back(std::move(e));
  }
  auto zone = std::make_shared<const DnsZone>(buildZone(services, endpoints, domain_));
  std::lock_guard<std::mutex> lock(mutex_);
  zone_ = std::move(zone);
}

void ClusterDns::serve() {
  char buffer[4096];
  while (true) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    sockaddr_storage from{};
    socklen_t length = sizeof(from);
    ssize_t n = ::recvfrom(fd_, buffer, sizeof(buffer), MSG_DONTWAIT,
                           reinterpret_cast<sockaddr*>(&from), &length);
    if (n <= 0) continue;
    ++queries_;
    std::shared_ptr<const DnsZone> zone;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      zone = zone_;
    }
    auto answer = answerQuery(std::string(buffer, static_cast<size_t>(n)), *zone, domain_);
    if (answer) {
      ::sendto(fd_, answer->data(), answer->size(), 0, reinterpret_cast<sockaddr*>(&from), length);
    }
  }
}

}  // namespace agora::kube
