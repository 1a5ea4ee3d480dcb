#pragma once

#include <string>

#include "agora/agora.pb.h"
#include "common/resources.hpp"

namespace agora::agent {

// What this machine offers: cpus from the affinity mask, mem from /proc/meminfo, disk from the
// work directory's filesystem, ports 31000-32000; each leaves some room for the system, as
// Mesos does. Anything named in `flag` (the --resources string) replaces the detected value.
Result<Resources> detectResources(const std::string& workDir, const std::string& flag);

// "rack:a;zone:z1" -> attributes.
Result<std::vector<Attribute>> parseAttributes(const std::string& text);

}  // namespace agora::agent
