#include "common/flags.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <sstream>

namespace agora {

namespace {

std::string envName(const std::string& flag) {
  std::string out = "AGORA_";
  for (char c : flag) {
    out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return out;
}

std::string quote(const std::string& s) { return "'" + s + "'"; }

}  // namespace

Flags::Flags(std::string usage, std::string summary)
    : usage_(std::move(usage)), summary_(std::move(summary)) {}

Flags::Flag* Flags::find(const std::string& name) {
  for (Flag& f : flags_) {
    if (f.name == name) {
      return &f;
    }
  }
  return nullptr;
}

void Flags::add(std::string* value, const std::string& name, const std::string& help) {
  flags_.push_back(Flag{name, help, value->empty() ? "" : *value, false, false,
                        [value](const std::string& v) -> Status {
                          *value = v;
                          return ok();
                        }});
}

void Flags::add(int* value, const std::string& name, const std::string& help) {
  flags_.push_back(Flag{name, help, std::to_string(*value), false, false,
                        [value, name](const std::string& v) -> Status {
                          char* end = nullptr;
                          errno = 0;
                          long parsed = std::strtol(v.c_str(), &end, 10);
                          if (v.empty() || *end != '\0' || errno != 0 || parsed < INT32_MIN ||
                              parsed > INT32_MAX) {
                            return Error("--" + name + " takes an integer, got " + quote(v));
                          }
                          *value = static_cast<int>(parsed);
                          return ok();
                        }});
}

void Flags::add(double* value, const std::string& name, const std::string& help) {
  std::ostringstream d;
  d << *value;
  flags_.push_back(Flag{name, help, d.str(), false, false,
                        [value, name](const std::string& v) -> Status {
                          char* end = nullptr;
                          double parsed = std::strtod(v.c_str(), &end);
                          if (v.empty() || *end != '\0' || !std::isfinite(parsed)) {
                            return Error("--" + name + " takes a number, got " + quote(v));
                          }
                          *value = parsed;
                          return ok();
                        }});
}

void Flags::add(bool* value, const std::string& name, const std::string& help) {
  flags_.push_back(Flag{name, help, *value ? "true" : "false", true, false,
                        [value, name](const std::string& v) -> Status {
                          if (v == "true" || v == "1" || v == "yes") {
                            *value = true;
                          } else if (v == "false" || v == "0" || v == "no") {
                            *value = false;
                          } else {
                            return Error("--" + name + " takes true or false, got " + quote(v));
                          }
                          return ok();
                        }});
}

void Flags::add(Duration* value, const std::string& name, const std::string& help) {
  flags_.push_back(Flag{name, help, formatDuration(*value), false, false,
                        [value, name](const std::string& v) -> Status {
                          auto d = parseDuration(v);
                          if (!d) {
                            return Error("--" + name + ": " + d.error());
                          }
                          *value = *d;
                          return ok();
                        }});
}

Status Flags::assign(Flag& flag, const std::string& value, const std::string& origin) {
  Status s = flag.assign(value);
  if (!s) {
    return Error(s.error() + (origin.empty() ? "" : " (from " + origin + ")"));
  }
  flag.set = true;
  return ok();
}

bool Flags::wasSet(const std::string& name) const {
  for (const Flag& f : flags_) {
    if (f.name == name) {
      return f.set;
    }
  }
  return false;
}

Result<std::vector<std::string>> Flags::parse(int argc, const char* const* argv) {
  std::vector<std::string> positional;
  bool flagsDone = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (flagsDone || arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flagsDone = true;
      continue;
    }
    if (arg == "--help" || arg == "-h" || arg == "-help") {
      help_ = true;
      continue;
    }
    std::string body = arg.substr(arg[1] == '-' ? 2 : 1);
    std::string name = body;
    std::optional<std::string> value;
    size_t eq = body.find('=');
    if (eq != std::string::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
    }
    // Accept --foo-bar as --foo_bar.
    for (char& c : name) {
      if (c == '-') {
        c = '_';
      }
    }
    Flag* flag = find(name);
    if (flag == nullptr && !value && name.rfind("no_", 0) == 0) {
      Flag* negated = find(name.substr(3));
      if (negated != nullptr && negated->isBool) {
        Status s = assign(*negated, "false", "");
        if (!s) {
          return Error(s.error());
        }
        continue;
      }
    }
    if (flag == nullptr) {
      return Error("unknown flag '--" + name + "' (see --help)");
    }
    if (!value) {
      if (flag->isBool) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return Error("flag --" + name + " needs a value");
      }
    }
    Status s = assign(*flag, *value, "");
    if (!s) {
      return Error(s.error());
    }
  }
  for (Flag& flag : flags_) {
    if (flag.set) {
      continue;
    }
    const char* env = std::getenv(envName(flag.name).c_str());
    if (env != nullptr) {
      Status s = assign(flag, env, envName(flag.name));
      if (!s) {
        return Error(s.error());
      }
    }
  }
  return positional;
}

std::string Flags::help() const {
  std::ostringstream out;
  out << "Usage: " << usage_ << "\n\n" << summary_ << "\n";
  if (!flags_.empty()) {
    out << "\nFlags (each can also be set as AGORA_<NAME> in the environment):\n";
    for (const Flag& f : flags_) {
      out << "  --" << f.name;
      if (!f.isBool) {
        out << "=VALUE";
      }
      out << "\n";
      std::istringstream lines(f.help);
      std::string line;
      while (std::getline(lines, line)) {
        out << "      " << line << "\n";
      }
      if (!f.defaultText.empty()) {
        out << "      (default: " << f.defaultText << ")\n";
      }
    }
  }
  return out.str();
}

std::vector<std::string> splitList(const std::string& text) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, ',')) {
    size_t b = item.find_first_not_of(" \t");
    size_t e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

}  // namespace agora
