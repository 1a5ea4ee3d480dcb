#pragma once

// Label and field selectors as the API takes them in `labelSelector` and `fieldSelector`:
// `app=web,tier!=db,env in (prod,staging),release notin (canary),gpu,!legacy` and
// `metadata.name=web,status.phase!=Running`.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace agora::kube {

class LabelSelector {
 public:
  // An empty string selects everything.
  static Result<LabelSelector> parse(const std::string& text);
  // From a LabelSelector object (matchLabels, matchExpressions), as in a Deployment's spec.
  static Result<LabelSelector> fromObject(const nlohmann::json& selector);

  bool matches(const nlohmann::json& labels) const;
  bool empty() const { return requirements_.empty(); }
  // The selector as `kubectl` writes it ("app=web,tier in (a,b)").
  std::string toString() const;

 private:
  struct Requirement {
    enum Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kNotExists } op = kEquals;
    std::string key;
    std::vector<std::string> values;
  };
  std::vector<Requirement> requirements_;
};

class FieldSelector {
 public:
  static Result<FieldSelector> parse(const std::string& text);
  // Fields are dotted paths into the object (metadata.name, spec.nodeName, involvedObject.uid).
  bool matches(const nlohmann::json& object) const;
  // The value a `metadata.name=X` term asks for, if any (a get-by-name in disguise).
  std::string exactName() const;

 private:
  struct Term {
    std::string field;
    std::string value;
    bool equals = true;
  };
  std::vector<Term> terms_;
};

// The string at a dotted path ("" when absent; numbers and booleans as JSON writes them).
std::string fieldValue(const nlohmann::json& object, const std::string& path);

}  // namespace agora::kube
