#include "common/ids.hpp"

#include <random>

namespace agora {

namespace {

std::mt19937_64& rng() {
  thread_local std::mt19937_64 engine([] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }());
  return engine;
}

}  // namespace

std::string uuidBytes() {
  std::string bytes(16, '\0');
  uint64_t a = rng()();
  uint64_t b = rng()();
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<char>(a >> (8 * i));
    bytes[8 + i] = static_cast<char>(b >> (8 * i));
  }
  bytes[6] = static_cast<char>((bytes[6] & 0x0f) | 0x40);  // version 4
  bytes[8] = static_cast<char>((bytes[8] & 0x3f) | 0x80);  // variant 1
  return bytes;
}

std::string hexEncode(const std::string& bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

std::string uuidString() {
  std::string hex = hexEncode(uuidBytes());
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

std::string shortId(size_t length) {
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::uniform_int_distribution<size_t> pick(0, sizeof(kAlphabet) - 2);
  std::string out;
  for (size_t i = 0; i < length; ++i) {
    out.push_back(kAlphabet[pick(rng())]);
  }
  return out;
}

}  // namespace agora

namespace agora {

Status validateId(const std::string& id, const std::string& what) {
  if (id.empty()) {
    return Error(what + " is empty");
  }
  if (id.size() > 255) {
    return Error(what + " is longer than 255 bytes");
  }
  if (id == "." || id == "..") {
    return Error(what + " '" + id + "' is not allowed");
  }
  for (unsigned char c : id) {
    if (c == '/' || c <= 0x20 || c == 0x7f) {
      return Error(what + " '" + id + "' contains '/', whitespace or a control character");
    }
  }
  return ok();
}

Status validateRole(const std::string& role) {
  if (role == "*") {
    return ok();
  }
  if (role.empty() || role.front() == '/' || role.back() == '/') {
    return Error("invalid role '" + role + "'");
  }
  size_t start = 0;
  while (start <= role.size()) {
    size_t slash = role.find('/', start);
    std::string part = role.substr(start, slash == std::string::npos ? std::string::npos
                                                                        : slash - start);
    Status s = validateId(part, "role component");
    if (!s || part.front() == '-' || part == "*") {
      return Error("invalid role '" + role + "'" + (s ? "" : ": " + s.error()));
    }
    if (slash == std::string::npos) {
      break;
    }
    start = slash + 1;
  }
  return ok();
}

}  // namespace agora
