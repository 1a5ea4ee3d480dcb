#pragma once

#include <chrono>
#include <string>

#include "common/result.hpp"

namespace agora {

using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::steady_clock::time_point;

using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

inline Duration fromSeconds(double s) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}
inline double toSeconds(Duration d) { return std::chrono::duration<double>(d).count(); }

// Seconds since the epoch, from the system clock.
double wallTimeNow();

// Parses "100ms", "15secs", "1.5s", "2mins", "1hrs", "3days" (Mesos units and the short forms
// ns, us, ms, s, m, h, d, w). A bare number is seconds.
Result<Duration> parseDuration(const std::string& text);

// Formats a duration in the largest unit that keeps it readable: "250ms", "15secs", "2mins".
std::string formatDuration(Duration d);

}  // namespace agora
