#pragma once

#include <cstdlib>
#include <string>

#include "common/fs.hpp"

namespace agora::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/agora-test-XXXXXX";
    char* made = ::mkdtemp(pattern.data());
    path_ = made != nullptr ? made : "";
  }
  // AGORA_TEST_KEEP=1 keeps the directory (logs, sandboxes) for a look after a failure.
  ~TempDir() {
    if (!path_.empty() && std::getenv("AGORA_TEST_KEEP") == nullptr) {
      (void)removeAll(path_);
    }
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace agora::testing
