#include "common/yaml_json.hpp"

#include <yaml-cpp/yaml.h>

namespace agora {

namespace {

using nlohmann::json;

constexpr size_t kMaxBytes = 4 * 1024 * 1024;
constexpr int kMaxDepth = 16;  // configuration files are a few levels deep

// YAML (a superset of JSON) as JSON: maps, sequences and scalars (as strings).
Result<json> yamlToJson(const YAML::Node& node, int depth) {
  if (depth > kMaxDepth) {
    return Error("nested too deeply");
  }
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return json(nullptr);
    case YAML::NodeType::Scalar:
      return json(node.Scalar());
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const YAML::Node& item : node) {
        auto converted = yamlToJson(item, depth + 1);
        if (!converted) return converted;
        out.push_back(std::move(converted).value());
      }
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& item : node) {
        if (!item.first.IsScalar()) {
          return Error("a key that is not a plain string");
        }
        auto converted = yamlToJson(item.second, depth + 1);
        if (!converted) return converted;
        out[item.first.Scalar()] = std::move(converted).value();
      }
      return out;
    }
  }
  return Error("an unknown YAML node");
}

}  // namespace

Result<json> parseYamlOrJson(const std::string& text) {
  if (text.size() > kMaxBytes) {
    return Error("larger than 4 MiB");
  }
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) {
      return Error("not valid JSON");
    }
    return j;
  }
  try {
    return yamlToJson(YAML::Load(text), 0);
  } catch (const YAML::Exception& e) {
    return Error(std::string("not valid YAML: ") + e.what());
  }
}

}  // namespace agora
