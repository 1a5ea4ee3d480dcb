#include "master/allocator/allocator.hpp"

#include <cctype>

namespace agora::master {

const char* describe(Unoffered reason) {
  switch (reason) {
    case Unoffered::kOffered:
      return "offered";
    case Unoffered::kInactive:
      return "inactive: the framework is disconnected or deactivated";
    case Unoffered::kSuppressed:
      return "suppressed: the framework asked for no offers for this role";
    case Unoffered::kQuotaLimit:
      return "quota limit: the role (or a parent) is at its limit";
    case Unoffered::kHeadroom:
      return "headroom: what is free is set aside for other roles' quota guarantees";
    case Unoffered::kFiltered:
      return "filtered: the framework declined what is free, and its filters are in force";
    case Unoffered::kNoFittingAgent:
      return "no fitting agent: what is free is too small, reserved for other roles, or on "
             "GPU agents the framework cannot use";
    case Unoffered::kFairShare:
      return "fair share: frameworks or roles with lower shares took what was free";
    case Unoffered::kNothingFree:
      return "nothing free: every agent's resources are offered or in use";
  }
  return "unknown";
}

Status validateRole(const std::string& role) {
  if (role == "*") {
    return ok();
  }
  if (role.empty()) {
    return Error("a role cannot be empty (\"*\" is the default role)");
  }
  if (role.size() > 255) {
    return Error("role '" + role.substr(0, 32) + "...' is longer than 255 characters");
  }
  size_t start = 0;
  while (start <= role.size()) {
    size_t slash = role.find('/', start);
    std::string segment = role.substr(start, slash == std::string::npos ? std::string::npos
                                                                         : slash - start);
    if (segment.empty()) {
      return Error("role '" + role + "' has an empty segment (between slashes, or at an end)");
    }
    if (segment == "." || segment == "..") {
      return Error("role '" + role + "' has a segment '" + segment + "'");
    }
    if (segment[0] == '-') {
      return Error("role '" + role + "' has a segment starting with '-'");
    }
    for (char c : segment) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
        return Error("role '" + role + "' has a character '" + std::string(1, c) +
                     "' (letters, digits, '-', '_', '.' and '/' between segments)");
      }
    }
    if (slash == std::string::npos) {
      break;
    }
    start = slash + 1;
  }
  return ok();
}

}  // namespace agora::master
