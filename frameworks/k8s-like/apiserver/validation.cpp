#include "frameworks/k8s-like/apiserver/validation.hpp"

#include <cctype>

namespace agora::kube {

namespace {

bool lowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

const char* kLabelRule =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const char* kSubdomainRule =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const char* kQualifiedRule =
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
    "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const char* kValueRule =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

bool isLabel(const std::string& s) {
  if (s.empty() || s.size() > 63 || !lowerAlnum(s.front()) || !lowerAlnum(s.back())) return false;
  for (char c : s) {
    if (!lowerAlnum(c) && c != '-') return false;
  }
  return true;
}

// [A-Za-z0-9] at both ends, [-A-Za-z0-9_.] between, at most 63.
bool isQualifiedPart(const std::string& s) {
  if (s.empty() || s.size() > 63 || !alnum(s.front()) || !alnum(s.back())) return false;
  for (char c : s) {
    if (!alnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

}  // namespace

std::optional<std::string> dns1123Label(const std::string& name) {
  if (name.size() > 63) return std::string("must be no more than 63 characters");
  if (!isLabel(name)) return std::string(kLabelRule);
  return std::nullopt;
}

std::optional<std::string> dns1123Subdomain(const std::string& name) {
  if (name.size() > 253) return std::string("must be no more than 253 characters");
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    std::string part = name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty() || !lowerAlnum(part.front()) || !lowerAlnum(part.back())) {
      return std::string(kSubdomainRule);
    }
    for (char c : part) {
      if (!lowerAlnum(c) && c != '-') return std::string(kSubdomainRule);
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return std::nullopt;
}

std::optional<std::string> labelKey(const std::string& key) {
  size_t slash = key.find('/');
  std::string name = slash == std::string::npos ? key : key.substr(slash + 1);
  if (slash != std::string::npos) {
    std::string prefix = key.substr(0, slash);
    if (auto why = dns1123Subdomain(prefix)) return "prefix part " + *why;
  }
  if (name.size() > 63) return std::string("name part must be no more than 63 characters");
  if (!isQualifiedPart(name)) return std::string(kQualifiedRule);
  return std::nullopt;
}

std::optional<std::string> labelValue(const std::string& value) {
  if (value.empty()) return std::nullopt;
  if (value.size() > 63) return std::string("must be no more than 63 characters");
  if (!isQualifiedPart(value)) return std::string(kValueRule);
  return std::nullopt;
}

std::vector<FieldCause> validateMetadata(const nlohmann::json& metadata, bool labelName) {
  std::vector<FieldCause> causes;
  std::string name = metadata.is_object() ? metadata.value("name", "") : "";
  if (name.empty() && !(metadata.is_object() && metadata.contains("generateName"))) {
    causes.push_back({"metadata.name", "", "name or generateName is required",
                      "FieldValueRequired"});
  } else if (!name.empty()) {
    if (auto why = labelName ? dns1123Label(name) : dns1123Subdomain(name)) {
      causes.push_back({"metadata.name", name, *why});
    }
  }
  if (metadata.is_object() && metadata.contains("labels")) {
    const auto& labels = metadata["labels"];
    if (!labels.is_object()) {
      causes.push_back({"metadata.labels", labels.dump(), "must be a map of strings"});
    } else {
      for (const auto& [key, value] : labels.items()) {
        if (auto why = labelKey(key)) {
          causes.push_back({"metadata.labels", key, *why});
        }
        if (!value.is_string()) {
          causes.push_back({"metadata.labels", value.dump(), "must be a string"});
        } else if (auto why = labelValue(value.get<std::string>())) {
          causes.push_back({"metadata.labels", value.get<std::string>(), *why});
        }
      }
    }
  }
  return causes;
}

}  // namespace agora::kube
