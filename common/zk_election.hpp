#pragma once

// How masters appear in ZooKeeper: each contending master owns an ephemeral sequential node
// <path>/masters/info_<sequence> whose data is its MasterInfo as JSON (readable with zkCli);
// the lowest sequence leads.

#include <optional>
#include <string>
#include <vector>

#include "agora/agora.pb.h"
#include "common/result.hpp"

namespace agora {

std::string mastersPath(const std::string& base);

// The masters' nodes among `children` (nodes that do not look like ours are left out), the
// leader first.
std::vector<std::string> electionOrder(const std::vector<std::string>& children);

// The node just before `mine` in election order, if any.
std::optional<std::string> predecessorNode(const std::vector<std::string>& children,
                                           const std::string& mine);

std::string masterInfoToJson(const MasterInfo& info);
Result<MasterInfo> masterInfoFromJson(const std::string& json);

}  // namespace agora
