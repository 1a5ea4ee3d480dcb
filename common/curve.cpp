#include "common/curve.hpp"

#include <sys/stat.h>

#include <set>

#include <vector>

#include <glog/logging.h>
#include <nlohmann/json.hpp>

#include "common/fs.hpp"

namespace agora {

namespace {

constexpr size_t kZ85KeyLength = 40;
constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

bool isZ85Key(const std::string& key) {
  if (key.size() != kZ85KeyLength) {
    return false;
  }
  uint8_t decoded[32];
  return zmq_z85_decode(decoded, key.c_str()) != nullptr;
}

Result<std::string> publicKeyOf(const std::string& secretKey) {
  char derived[kZ85KeyLength + 1] = {};
  if (zmq_curve_public(derived, secretKey.c_str()) != 0) {
    return Error(std::string("cannot derive the public key: ") + zmq_strerror(zmq_errno()));
  }
  return std::string(derived);
}

Result<std::string> stringField(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) {
    return std::string();
  }
  if (!it->is_string()) {
    return Error(std::string("'") + name + "' must be a string");
  }
  return it->get<std::string>();
}

}  // namespace

CurveKeyPair generateCurveKeyPair() {
  char publicKey[kZ85KeyLength + 1] = {};
  char secretKey[kZ85KeyLength + 1] = {};
  CHECK_EQ(zmq_curve_keypair(publicKey, secretKey), 0)
      << "zmq_curve_keypair: " << zmq_strerror(zmq_errno()) << " (libzmq built without CURVE?)";
  return {publicKey, secretKey};
}

Result<CurveKeyPair> curveKeyPairOf(const std::string& secretKey) {
  if (!isZ85Key(secretKey)) {
    return Error("not a CURVE secret key: 40 characters of Z85");
  }
  auto publicKey = publicKeyOf(secretKey);
  if (!publicKey) {
    return Error(publicKey.error());
  }
  return CurveKeyPair{*publicKey, secretKey};
}

Result<Credentials> parseCredentials(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Error("not a JSON object");
  }
  static const std::set<std::string> kKnown = {"principal", "public_key", "secret_key",
                                               "master_public_key", "clients", "tls_ca"};
  for (const auto& [key, value] : j.items()) {
    if (kKnown.count(key) == 0) {
      return Error("unknown field '" + key + "'");
    }
  }
  Credentials c;
  for (auto [name, target] : {std::pair<const char*, std::string*>{"principal", &c.principal},
                              {"public_key", &c.keys.publicKey},
                              {"secret_key", &c.keys.secretKey},
                              {"master_public_key", &c.serverKey},
                              {"tls_ca", &c.tlsCa}}) {
    auto value = stringField(j, name);
    if (!value) {
      return Error(value.error());
    }
    *target = *value;
  }
  if (!isZ85Key(c.keys.secretKey)) {
    return Error("'secret_key' must be a CURVE key: 40 characters of Z85");
  }
  auto derived = publicKeyOf(c.keys.secretKey);
  if (!derived) {
    return Error(derived.error());
  }
  if (c.keys.publicKey.empty()) {
    c.keys.publicKey = *derived;
  } else if (c.keys.publicKey != *derived) {
    return Error("'public_key' does not belong to 'secret_key'");
  }
  if (j.contains("clients")) {
    const nlohmann::json& clients = j["clients"];
    if (!clients.is_array() || clients.empty()) {
      return Error("'clients' must be a non-empty list of {principal, public_key}");
    }
    for (const nlohmann::json& client : clients) {
      if (!client.is_object()) {
        return Error("each of 'clients' must be an object {principal, public_key}");
      }
      auto principal = stringField(client, "principal");
      auto key = stringField(client, "public_key");
      if (!principal || !key) {
        return Error("clients: " + (principal ? key.error() : principal.error()));
      }
      if (principal->empty()) {
        return Error("clients: a client without a 'principal'");
      }
      if (!isZ85Key(*key)) {
        return Error("clients: the public key of '" + *principal +
                     "' is not a CURVE key (40 characters of Z85)");
      }
      if (!c.clients.emplace(*key, *principal).second) {
        return Error("clients: the public key of '" + *principal + "' is listed twice");
      }
    }
    if (!c.serverKey.empty()) {
      return Error("a master's credentials ('clients') pin no 'master_public_key'");
    }
    if (!c.tlsCa.empty()) {
      return Error("'tls_ca' is for a client's credentials (the master's has --tls_client_ca)");
    }
  } else {
    if (c.principal.empty()) {
      return Error("a client's credentials need a 'principal'");
    }
    if (!isZ85Key(c.serverKey)) {
      return Error("a client's credentials need the master's public key, 'master_public_key' "
                   "(40 characters of Z85)");
    }
  }
  return c;
}

Result<Credentials> loadCredentials(const std::string& path, CredentialsFor use) {
  auto text = readFile(path);
  if (!text) {
    return Error(text.error());
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    LOG(WARNING) << "Credentials " << path << " can be read by others (mode "
                 << std::oct << (st.st_mode & 0777) << std::dec << "): chmod 600 it";
  }
  auto parsed = parseCredentials(*text);
  if (!parsed) {
    return Error(path + ": " + parsed.error());
  }
  if (parsed->isServer() != (use == CredentialsFor::kMaster)) {
    return Error(path + (parsed->isServer()
                             ? " are a master's (they list clients); this needs a client's own"
                             : " are a client's; a master's list the 'clients' it admits"));
  }
  return parsed;
}

std::string credentialsToJson(const Credentials& c) {
  nlohmann::json j = nlohmann::json::object();
  if (!c.principal.empty()) j["principal"] = c.principal;
  j["public_key"] = c.keys.publicKey;
  j["secret_key"] = c.keys.secretKey;
  if (!c.serverKey.empty()) j["master_public_key"] = c.serverKey;
  if (!c.tlsCa.empty()) j["tls_ca"] = c.tlsCa;
  if (!c.clients.empty()) {
    nlohmann::json clients = nlohmann::json::array();
    for (const auto& [key, principal] : c.clients) {
      clients.push_back({{"principal", principal}, {"public_key", key}});
    }
    j["clients"] = std::move(clients);
  }
  return j.dump(2) + "\n";
}

Status saveCredentials(const std::string& path, const Credentials& credentials) {
  return writeFileAtomic(path, credentialsToJson(credentials), 0600);
}

// ------------------------------------------------------------------------------------------
// ZapHandler

ZapHandler::ZapHandler(zmq::context_t& context, std::map<std::string, std::string> clients)
    : socket_(context, zmq::socket_type::rep), clients_(std::move(clients)) {
  socket_.set(zmq::sockopt::linger, 0);
}

Result<std::unique_ptr<ZapHandler>> ZapHandler::start(zmq::context_t& context,
                                                       std::map<std::string, std::string> clients) {
  std::unique_ptr<ZapHandler> handler(new ZapHandler(context, std::move(clients)));
  try {
    handler->socket_.bind(kZapEndpoint);
  } catch (const zmq::error_t& e) {
    return Error(std::string("cannot start the ZAP handler: ") + e.what());
  }
  ZapHandler* self = handler.get();
  handler->thread_ = std::thread([self] { self->run(); });
  return handler;
}

ZapHandler::~ZapHandler() {
  stop_ = true;
  if (thread_.joinable()) {
    thread_.join();
  }
}

void ZapHandler::admit(const std::string& publicKey, const std::string& principal) {
  std::lock_guard<std::mutex> lock(mutex_);
  clients_[publicKey] = principal;
}

void ZapHandler::forget(const std::string& publicKey) {
  std::lock_guard<std::mutex> lock(mutex_);
  clients_.erase(publicKey);
}

void ZapHandler::run() {
  zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
  while (!stop_) {
    try {
      if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) > 0) {
        answer(socket_);
      }
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) {
        return;
      }
      LOG(ERROR) << "ZAP handler: " << e.what();
    }
  }
}

void ZapHandler::answer(zmq::socket_t& socket) {
  std::vector<zmq::message_t> frames;
  do {
    zmq::message_t frame;
    if (!socket.recv(frame, zmq::recv_flags::dontwait)) {
      break;
    }
    bool more = frame.more();
    frames.push_back(std::move(frame));
    if (!more) break;
  } while (true);
  // version, request id, domain, address, routing id, mechanism, credentials...
  std::string version = frames.size() > 0 ? frames[0].to_string() : "";
  std::string requestId = frames.size() > 1 ? frames[1].to_string() : "";
  std::string address = frames.size() > 3 ? frames[3].to_string() : "?";
  std::string mechanism = frames.size() > 5 ? frames[5].to_string() : "";
  std::string status = "400";
  std::string text = "unknown client key";
  std::string principal;
  if (version != "1.0") {
    status = "500";
    text = "unsupported ZAP version";
  } else if (mechanism != "CURVE" || frames.size() != 7 || frames[6].size() != 32) {
    text = "CURVE credentials required";
  } else {
    char z85[kZ85KeyLength + 1] = {};
    zmq_z85_encode(z85, static_cast<const uint8_t*>(frames[6].data()), 32);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = clients_.find(z85);
    if (it != clients_.end()) {
      status = "200";
      text = "OK";
      principal = it->second;
    } else {
      text = "unknown client key " + std::string(z85);
    }
  }
  if (status == "200") {
    ++admitted_;
  } else {
    uint64_t refused = ++refused_;
    if (refused <= 10 || refused % 100 == 0) {
      LOG(WARNING) << "Refused a connection from " << address << ": " << text << " ("
                   << refused << " refused so far)";
    }
  }
  // The reply must follow the request; a peer that vanished meanwhile is no concern of ours.
  socket.send(zmq::buffer(std::string("1.0")), zmq::send_flags::sndmore);
  socket.send(zmq::buffer(requestId), zmq::send_flags::sndmore);
  socket.send(zmq::buffer(status), zmq::send_flags::sndmore);
  socket.send(zmq::buffer(text), zmq::send_flags::sndmore);
  socket.send(zmq::buffer(principal), zmq::send_flags::sndmore);
  socket.send(zmq::buffer(std::string()), zmq::send_flags::none);
}

}  // namespace agora
