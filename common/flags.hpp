#pragma once

// Per-command flags, in the spirit of Mesos's stout flags: each `agora` verb declares its own
// flags with their own defaults and help, so `agora master --help` lists only the master's.
// Accepted forms: --name=value, --name value, --flag / --no-flag for booleans. A flag not given
// on the command line is read from the environment variable AGORA_<NAME> when it is set.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "common/time.hpp"

namespace agora {

// A comma-separated list ("a, b,,c") as its items, trimmed; empty items are dropped.
std::vector<std::string> splitList(const std::string& text);

class Flags {
 public:
  Flags(std::string usage, std::string summary);

  void add(std::string* value, const std::string& name, const std::string& help);
  void add(int* value, const std::string& name, const std::string& help);
  void add(double* value, const std::string& name, const std::string& help);
  void add(bool* value, const std::string& name, const std::string& help);
  void add(Duration* value, const std::string& name, const std::string& help);

  // Parses argv[1..]; words that are not flags are returned in order (a lone "--" ends the
  // flags). Unknown flags and bad values are errors.
  Result<std::vector<std::string>> parse(int argc, const char* const* argv);

  bool helpRequested() const { return help_; }
  std::string help() const;
  // True when the flag was given on the command line or in the environment.
  bool wasSet(const std::string& name) const;

 private:
  struct Flag {
    std::string name;
    std::string help;
    std::string defaultText;
    bool isBool = false;
    bool set = false;
    std::function<Status(const std::string&)> assign;
  };

  Flag* find(const std::string& name);
  Status assign(Flag& flag, const std::string& value, const std::string& origin);

  std::string usage_;
  std::string summary_;
  std::vector<Flag> flags_;
  bool help_ = false;
};

}  // namespace agora
