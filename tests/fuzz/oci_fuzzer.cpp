// The image store's import (isolators/images/store.hpp): an OCI image layout or a `docker
// save` archive, tarred and maybe gzip'd, from a file nobody checked. Every input is imported
// into a scratch store that is emptied afterwards; a refused archive is expected, a crash,
// undefined behaviour or a file written outside the store is a finding. Needs root, as
// importing does (layers keep their owners; whiteouts are device nodes).

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/fs.hpp"
#include "isolators/images/store.hpp"

namespace {

std::string scratchDir;

void removeScratch() { (void)agora::removeAll(scratchDir); }

// A directory of this run's own, removed when the run ends.
const std::string& scratch() {
  if (scratchDir.empty()) {
    char name[] = "/tmp/agora-fuzz-oci-XXXXXX";
    if (::mkdtemp(name) == nullptr) ::abort();
    scratchDir = name;
    std::atexit(removeScratch);
  }
  return scratchDir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (::geteuid() != 0) return 0;  // importing needs root: nothing to exercise without it
  const std::string& dir = scratch();
  std::string tarball = dir + "/input.tar";
  FILE* out = std::fopen(tarball.c_str(), "wb");
  if (out == nullptr) ::abort();
  if (size > 0 && std::fwrite(data, 1, size, out) != size) ::abort();
  std::fclose(out);
  agora::images::Store store(dir + "/store");
  auto imported = store.import(tarball);
  if (imported.ok()) {
    (void)store.list();
    (void)store.find(imported->id);
  }
  (void)agora::removeAll(dir + "/store");
  return 0;
}
