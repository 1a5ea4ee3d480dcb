#pragma once

// A configuration file in YAML or JSON (JSON is read as JSON, the rest as YAML), as JSON:
// maps, sequences, and scalars as strings. Nesting is bounded; a bad file is an error, never
// a crash.

#include <string>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace agora {

Result<nlohmann::json> parseYamlOrJson(const std::string& text);

}  // namespace agora
