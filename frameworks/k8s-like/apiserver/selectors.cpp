#include "frameworks/k8s-like/apiserver/selectors.hpp"

#include <algorithm>

#include "frameworks/k8s-like/apiserver/validation.hpp"

namespace agora::kube {

using nlohmann::json;

namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Splits on commas outside parentheses.
std::vector<std::string> splitTerms(const std::string& text) {
  std::vector<std::string> out;
  int depth = 0;
  std::string current;
  for (char c : text) {
    if (c == '(') {
      ++depth;
    } else if (c == ')') {
      --depth;
    }
    if (c == ',' && depth == 0) {
      out.push_back(trim(current));
      current.clear();
    } else {
      current += c;
    }
  }
  out.push_back(trim(current));
  return out;
}

std::string labelOf(const json& labels, const std::string& key, bool* present) {
  *present = labels.is_object() && labels.contains(key) && labels[key].is_string();
  return *present ? labels[key].get<std::string>() : "";
}

}  // namespace

Result<LabelSelector> LabelSelector::parse(const std::string& text) {
  LabelSelector selector;
  if (trim(text).empty()) {
    return selector;
  }
  for (const std::string& term : splitTerms(text)) {
    if (term.empty()) {
      return Error("unable to parse requirement: empty term in \"" + text + "\"");
    }
    Requirement r;
    size_t paren = term.find('(');
    if (paren != std::string::npos) {
      if (term.back() != ')') {
        return Error("unable to parse requirement: missing ')' in \"" + term + "\"");
      }
      std::string left = trim(term.substr(0, paren));
      size_t space = left.find_last_of(" \t");
      if (space == std::string::npos) {
        return Error("unable to parse requirement: expected 'in' or 'notin' in \"" + term + "\"");
      }
      std::string op = trim(left.substr(space + 1));
      r.key = trim(left.substr(0, space));
      if (op == "in") {
        r.op = Requirement::kIn;
      } else if (op == "notin") {
        r.op = Requirement::kNotIn;
      } else {
        return Error("unable to parse requirement: unknown operator '" + op + "'");
      }
      std::string inside = term.substr(paren + 1, term.size() - paren - 2);
      for (const auto& v : splitTerms(inside)) {
        r.values.push_back(v);
      }
    } else if (term[0] == '!') {
      r.op = Requirement::kNotExists;
      r.key = trim(term.substr(1));
    } else if (size_t ne = term.find("!="); ne != std::string::npos) {
      r.op = Requirement::kNotEquals;
      r.key = trim(term.substr(0, ne));
      r.values.push_back(trim(term.substr(ne + 2)));
    } else if (size_t eq = term.find('='); eq != std::string::npos) {
      r.op = Requirement::kEquals;
      r.key = trim(term.substr(0, eq));
      size_t skip = term.compare(eq, 2, "==") == 0 ? 2 : 1;
      r.values.push_back(trim(term.substr(eq + skip)));
    } else {
      r.op = Requirement::kExists;
      r.key = term;
    }
    if (auto why = labelKey(r.key)) {
      return Error("unable to parse requirement: invalid label key \"" + r.key + "\": " + *why);
    }
    for (const auto& v : r.values) {
      if (auto why = labelValue(v)) {
        return Error("unable to parse requirement: invalid label value: \"" + v + "\": " + *why);
      }
    }
    selector.requirements_.push_back(std::move(r));
  }
  return selector;
}

Result<LabelSelector> LabelSelector::fromObject(const json& object) {
  LabelSelector selector;
  if (!object.is_object()) {
    return selector;
  }
  if (object.contains("matchLabels") && object["matchLabels"].is_object()) {
    for (const auto& [key, value] : object["matchLabels"].items()) {
      if (!value.is_string()) {
        return Error("matchLabels values must be strings");
      }
      Requirement r;
      r.key = key;
      r.values.push_back(value.get<std::string>());
      selector.requirements_.push_back(std::move(r));
    }
  }
  if (object.contains("matchExpressions") && object["matchExpressions"].is_array()) {
    for (const auto& e : object["matchExpressions"]) {
      Requirement r;
      r.key = e.value("key", "");
      std::string op = e.value("operator", "");
      if (op == "In") {
        r.op = Requirement::kIn;
      } else if (op == "NotIn") {
        r.op = Requirement::kNotIn;
      } else if (op == "Exists") {
        r.op = Requirement::kExists;
      } else if (op == "DoesNotExist") {
        r.op = Requirement::kNotExists;
      } else {
        return Error("\"" + op + "\" is not a valid label selector operator");
      }
      if (e.contains("values") && e["values"].is_array()) {
        for (const auto& v : e["values"]) {
          if (v.is_string()) {
            r.values.push_back(v.get<std::string>());
          }
        }
      }
      selector.requirements_.push_back(std::move(r));
    }
  }
  return selector;
}

bool LabelSelector::matches(const json& labels) const {
  for (const auto& r : requirements_) {
    bool present = false;
    std::string value = labelOf(labels, r.key, &present);
    bool listed = std::find(r.values.begin(), r.values.end(), value) != r.values.end();
    switch (r.op) {
      case Requirement::kEquals:
        if (!present || value != r.values[0]) return false;
        break;
      case Requirement::kNotEquals:
        if (present && value == r.values[0]) return false;
        break;
      case Requirement::kIn:
        if (!present || !listed) return false;
        break;
      case Requirement::kNotIn:
        if (present && listed) return false;
        break;
      case Requirement::kExists:
        if (!present) return false;
        break;
      case Requirement::kNotExists:
        if (present) return false;
        break;
    }
  }
  return true;
}

std::string LabelSelector::toString() const {
  std::string out;
  for (const auto& r : requirements_) {
    if (!out.empty()) {
      out += ",";
    }
    auto joined = [&] {
      std::string s;
      for (const auto& v : r.values) {
        s += (s.empty() ? "" : ",") + v;
      }
      return s;
    };
    switch (r.op) {
      case Requirement::kEquals: out += r.key + "=" + r.values[0]; break;
      case Requirement::kNotEquals: out += r.key + "!=" + r.values[0]; break;
      case Requirement::kIn: out += r.key + " in (" + joined() + ")"; break;
      case Requirement::kNotIn: out += r.key + " notin (" + joined() + ")"; break;
      case Requirement::kExists: out += r.key; break;
      case Requirement::kNotExists: out += "!" + r.key; break;
    }
  }
  return out;
}

Result<FieldSelector> FieldSelector::parse(const std::string& text) {
  FieldSelector selector;
  if (trim(text).empty()) {
    return selector;
  }
  for (const std::string& term : splitTerms(text)) {
    Term t;
    size_t ne = term.find("!=");
    size_t eq = term.find('=');
    if (ne != std::string::npos) {
      t.field = trim(term.substr(0, ne));
      t.value = trim(term.substr(ne + 2));
      t.equals = false;
    } else if (eq != std::string::npos) {
      t.field = trim(term.substr(0, eq));
      size_t skip = term.compare(eq, 2, "==") == 0 ? 2 : 1;
      t.value = trim(term.substr(eq + skip));
    } else {
      return Error("invalid selector: '" + text + "'; can't understand '" + term + "'");
    }
    if (t.field.empty()) {
      return Error("invalid selector: '" + text + "'; can't understand '" + term + "'");
    }
    selector.terms_.push_back(std::move(t));
  }
  return selector;
}

bool FieldSelector::matches(const json& object) const {
  for (const auto& t : terms_) {
    if ((fieldValue(object, t.field) == t.value) != t.equals) {
      return false;
    }
  }
  return true;
}

std::string FieldSelector::exactName() const {
  for (const auto& t : terms_) {
    if (t.field == "metadata.name" && t.equals) {
      return t.value;
    }
  }
  return "";
}

std::string fieldValue(const json& object, const std::string& path) {
  const json* at = &object;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t dot = path.find('.', pos);
    std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (!at->is_object() || !at->contains(part)) {
      return "";
    }
    at = &(*at)[part];
    if (dot == std::string::npos) {
      break;
    }
    pos = dot + 1;
  }
  if (at->is_string()) {
    return at->get<std::string>();
  }
  if (at->is_null()) {
    return "";
  }
  return at->dump();
}

}  // namespace agora::kube
