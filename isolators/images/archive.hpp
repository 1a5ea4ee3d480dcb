#pragma once

// Tar archives for the image store, on libarchive: reading an image tarball's files, digests
// of layers, unpacking a layer safely (see store.hpp), and writing tars (build-rootfs, tests).

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace agora::images {

// sha256 of a file or of bytes, as "sha256:<hex>".
Result<std::string> sha256File(const std::string& path);
std::string sha256Bytes(const std::string& bytes);

// An archive's path, relative and without "." parts; an error for one with "..".
Result<std::string> cleanPath(const std::string& raw);

// The regular files and directories of a (possibly gzip'd) tarball, into `into`.
Status extractArchive(const std::string& tarball, const std::string& into);

// sha256 of what a layer blob holds uncompressed (its diff id).
Result<std::string> uncompressedDigest(const std::string& blob);

struct UnpackStats {
  uint64_t bytes = 0;
  int devicesSkipped = 0;
  int setuidDropped = 0;
};
// Unpacks one layer into `root`, whiteouts in overlayfs's form; refuses paths that leave the
// root; makes no device nodes; drops setuid and setgid bits.
Status unpackLayer(const std::string& blob, const std::string& root, UnpackStats* stats);

// A tar entry to write: a file ('f', with `data`), a directory ('d'), a symlink ('l' to
// `link`) or a hard link ('h' to `link`).
struct TarEntry {
  std::string path;
  char type = 'f';
  std::string data;
  std::string link;
  unsigned mode = 0644;
};
Status writeTar(const std::string& path, const std::vector<TarEntry>& entries, bool gzip = false);

// A directory tree as a tar (owners, modes, symlinks kept).
Status packDirectory(const std::string& directory, const std::string& tarPath);

}  // namespace agora::images
