// The daemons' flag parser (common/flags.hpp) on any command line: words split at NUL bytes,
// parsed into flags of every kind.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/flags.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> words = {"agora"};
  std::string word;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      words.push_back(word);
      word.clear();
    } else {
      word.push_back(static_cast<char>(data[i]));
    }
  }
  words.push_back(word);
  std::vector<const char*> argv;
  for (const std::string& w : words) argv.push_back(w.c_str());
  std::string text;
  int number = 0;
  double ratio = 0;
  bool toggle = false;
  agora::Duration timeout = agora::seconds(1);
  agora::Flags flags("agora fuzz", "flags of every kind");
  flags.add(&text, "text", "a string");
  flags.add(&number, "number", "an integer");
  flags.add(&ratio, "ratio", "a number");
  flags.add(&toggle, "toggle", "a boolean");
  flags.add(&timeout, "timeout", "a duration");
  (void)flags.parse(static_cast<int>(argv.size()), argv.data());
  (void)flags.help();
  return 0;
}
