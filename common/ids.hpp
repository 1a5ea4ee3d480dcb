#pragma once

#include <cstdint>
#include <string>

namespace agora {

// A random version-4 UUID in its usual text form.
std::string uuidString();

// 16 random bytes: the uuid of a status update on the wire.
std::string uuidBytes();

// Lower-case hex of arbitrary bytes ("" for "").
std::string hexEncode(const std::string& bytes);

// A short random token of [a-z0-9], for ids users type.
std::string shortId(size_t length = 6);

// Ids of the form "<prefix><n>", n counting from 0, as Mesos names offers and frameworks.
class SequentialIds {
 public:
  explicit SequentialIds(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string next() { return prefix_ + std::to_string(next_++); }

 private:
  std::string prefix_;
  uint64_t next_ = 0;
};

}  // namespace agora

#include "common/result.hpp"

namespace agora {

// Ids from users and peers become file names (sandboxes) and URL parts: no '/', no
// whitespace or control characters, not "." or "..", at most 255 bytes.
Status validateId(const std::string& id, const std::string& what);

// Role names: "*" (the default role), or '/'-separated path components like "eng/web", each
// a valid id that does not start with '-'.
Status validateRole(const std::string& role);

}  // namespace agora
