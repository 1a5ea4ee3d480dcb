#include "common/resources_json.hpp"

#include <map>

namespace agora {

namespace {

nlohmann::json flat(const Resources& resources) {
  nlohmann::json out = {{"cpus", 0.0}, {"mem", 0.0}, {"disk", 0.0}, {"gpus", 0.0}};
  std::map<std::string, std::string> ranges;
  for (const Resource& r : resources.items()) {
    if (r.type() == Resource::SCALAR) {
      out[r.name()] = resources.scalar(r.name());
    } else {
      std::string& text = ranges[r.name()];
      for (const Range& range : r.ranges()) {
        text += (text.empty() ? "" : ",") + std::to_string(range.begin()) + "-" +
                std::to_string(range.end());
      }
    }
  }
  for (const auto& [name, text] : ranges) {
    out[name] = "[" + text + "]";
  }
  return out;
}

}  // namespace

nlohmann::json resourcesJson(const Resources& resources) {
  nlohmann::json out = flat(resources);
  std::map<std::string, Resources> byRole;
  for (const Resource& r : resources.items()) {
    if (r.reservations_size() > 0) {
      byRole[reservationRole(r)] += r;
    }
  }
  if (!byRole.empty()) {
    nlohmann::json reserved = nlohmann::json::object();
    for (const auto& [role, rs] : byRole) {
      reserved[role] = flat(rs);
    }
    out["reserved"] = reserved;
  }
  return out;
}

}  // namespace agora
