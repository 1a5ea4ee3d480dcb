#include "common/zk_election.hpp"

#include <algorithm>

#include <google/protobuf/util/json_util.h>

namespace agora {

namespace {

constexpr const char* kPrefix = "info_";

// The sequence number of an election node, or -1 for a node that is not one.
long long sequenceOf(const std::string& name) {
  if (name.rfind(kPrefix, 0) != 0) {
    return -1;
  }
  std::string digits = name.substr(std::string(kPrefix).size());
  if (digits.empty() || digits.size() > 18 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return -1;
  }
  return std::stoll(digits);
}

}  // namespace

std::vector<std::string> electionOrder(const std::vector<std::string>& children) {
  std::vector<std::string> nodes;
  for (const std::string& c : children) {
    if (sequenceOf(c) >= 0) {
      nodes.push_back(c);
    }
  }
  std::sort(nodes.begin(), nodes.end(),
            [](const std::string& a, const std::string& b) { return sequenceOf(a) < sequenceOf(b); });
  return nodes;
}

std::string mastersPath(const std::string& base) { return base + "/masters"; }

std::optional<std::string> predecessorNode(const std::vector<std::string>& children,
                                           const std::string& mine) {
  std::vector<std::string> nodes = electionOrder(children);
  auto it = std::find(nodes.begin(), nodes.end(), mine);
  if (it == nodes.end() || it == nodes.begin()) {
    return std::nullopt;
  }
  return *(it - 1);
}

std::string masterInfoToJson(const MasterInfo& info) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(info, &out, options);
  return out;
}

Result<MasterInfo> masterInfoFromJson(const std::string& json) {
  MasterInfo info;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto status = google::protobuf::util::JsonStringToMessage(json, &info, options);
  if (!status.ok()) {
    return Error("bad MasterInfo: " + status.ToString());
  }
  if (info.endpoint().empty()) {
    return Error("MasterInfo without an endpoint");
  }
  return info;
}

}  // namespace agora
