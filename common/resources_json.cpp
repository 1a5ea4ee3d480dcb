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

nlohmann::json statisticsJson(const ResourceStatistics& s) {
  return {{"timestamp", s.timestamp()},
          {"cpus_user_time_secs", s.cpus_user_time_secs()},
          {"cpus_system_time_secs", s.cpus_system_time_secs()},
          {"cpus_limit", s.cpus_limit()},
          {"cpus_nr_throttled", s.cpus_nr_throttled()},
          {"cpus_throttled_time_secs", s.cpus_throttled_time_secs()},
          {"mem_total_bytes", s.mem_total_bytes()},
          {"mem_rss_bytes", s.mem_rss_bytes()},
          {"mem_cache_bytes", s.mem_cache_bytes()},
          {"mem_limit_bytes", s.mem_limit_bytes()},
          {"processes", s.processes()},
          {"disk_used_bytes", s.disk_used_bytes()}};
}

}  // namespace agora
