#include "common/time.hpp"

#include <cmath>
#include <cstdlib>
#include <utility>

namespace agora {

double wallTimeNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<Duration> parseDuration(const std::string& text) {
  if (text.empty()) {
    return Error("empty duration");
  }
  const char* begin = text.c_str();
  char* end = nullptr;
  double value = std::strtod(begin, &end);
  if (end == begin || !std::isfinite(value) || value < 0) {
    return Error("invalid duration '" + text + "': expected a number and a unit such as 10secs");
  }
  std::string unit(end);
  static const std::pair<const char*, double> kUnits[] = {
      {"", 1.0},          {"ns", 1e-9},     {"us", 1e-6},      {"ms", 1e-3},
      {"s", 1.0},         {"sec", 1.0},     {"secs", 1.0},     {"m", 60.0},
      {"min", 60.0},      {"mins", 60.0},   {"h", 3600.0},     {"hr", 3600.0},
      {"hrs", 3600.0},    {"d", 86400.0},   {"day", 86400.0},  {"days", 86400.0},
      {"w", 604800.0},    {"week", 604800.0}, {"weeks", 604800.0},
  };
  for (const auto& [name, factor] : kUnits) {
    if (unit == name) {
      double secondsValue = value * factor;
      if (secondsValue > 1e9) {
        return Error("duration '" + text + "' is too long");
      }
      return fromSeconds(secondsValue);
    }
  }
  return Error("invalid duration '" + text + "': unknown unit '" + unit +
               "' (use ms, secs, mins, hrs or days)");
}

std::string formatDuration(Duration d) {
  auto trim = [](double v, const char* unit) {
    std::string s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.') {
      s.pop_back();
    }
    return s + unit;
  };
  double s = toSeconds(d);
  if (s == 0) {
    return "0secs";
  }
  if (s < 1e-3) {
    return trim(s * 1e6, "us");
  }
  if (s < 1.0) {
    return trim(s * 1e3, "ms");
  }
  if (s < 60.0) {
    return trim(s, "secs");
  }
  if (s < 3600.0) {
    return trim(s / 60.0, "mins");
  }
  if (s < 86400.0) {
    return trim(s / 3600.0, "hrs");
  }
  return trim(s / 86400.0, "days");
}

}  // namespace agora
