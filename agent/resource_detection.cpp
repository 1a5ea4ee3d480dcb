#include "agent/resource_detection.hpp"

#include <sched.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

namespace agora::agent {

namespace {

double detectCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    return CPU_COUNT(&set);
  }
  return 1;
}

// MiB of memory to offer: all but max(1 GiB, a quarter) when there is more than 2 GiB.
double detectMemMb() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == "MemTotal:") {
      double mb = kb / 1024.0;
      if (mb > 2048) {
        return std::floor(mb - std::max(1024.0, mb / 4));
      }
      return std::floor(mb / 2);
    }
  }
  return 1024;
}

// MiB of disk: the work dir's filesystem, less max(5 GiB, a tenth) when it is large enough.
double detectDiskMb(const std::string& workDir) {
  struct statvfs st;
  if (::statvfs(workDir.c_str(), &st) != 0) {
    return 0;
  }
  double mb = static_cast<double>(st.f_blocks) * st.f_frsize / (1024.0 * 1024.0);
  if (mb > 10240) {
    return std::floor(mb - std::max(5120.0, mb / 10));
  }
  return std::floor(mb / 2);
}

}  // namespace

Result<Resources> detectResources(const std::string& workDir, const std::string& flag) {
  auto given = Resources::parse(flag);
  if (!given) {
    return Error("invalid --resources: " + given.error());
  }
  std::set<std::string> named;
  for (const Resource& r : given->items()) {
    named.insert(r.name());
  }
  Resources total = *given;
  if (named.count("cpus") == 0) {
    total += Resources::scalar("cpus", detectCpus());
  }
  if (named.count("mem") == 0) {
    total += Resources::scalar("mem", detectMemMb());
  }
  if (named.count("disk") == 0) {
    total += Resources::scalar("disk", detectDiskMb(workDir));
  }
  if (named.count("ports") == 0) {
    total += Resources::ranges("ports", {{31000, 32000}});
  }
  return total;
}

Result<std::vector<Attribute>> parseAttributes(const std::string& text) {
  std::vector<Attribute> out;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ';')) {
    if (part.empty()) {
      continue;
    }
    size_t colon = part.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == part.size()) {
      return Error("invalid attribute '" + part + "': expected name:value, e.g. rack:a");
    }
    Attribute a;
    a.set_name(part.substr(0, colon));
    a.set_value(part.substr(colon + 1));
    out.push_back(a);
  }
  return out;
}

}  // namespace agora::agent
