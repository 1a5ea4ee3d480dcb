#pragma once

#include <sys/types.h>

#include <string>

#include "common/result.hpp"

namespace agora {

// mkdir -p.
Status makeDirectories(const std::string& path);

// Durable replace: write to a temporary file beside `path`, fsync it, rename it over `path`,
// fsync the directory. A crash leaves either the old or the new content, never a mix. The file
// has `mode` from its creation (0600 for a secret: never readable by others, even briefly).
Status writeFileAtomic(const std::string& path, const std::string& content, mode_t mode = 0644);

Result<std::string> readFile(const std::string& path);

bool pathExists(const std::string& path);

// rm -rf; missing paths are fine.
Status removeAll(const std::string& path);

// Bytes a directory tree takes on disk (allocated blocks, as du counts them; symlinks are not
// followed, so a linked persistent volume is not counted). 0 if it does not exist.
uint64_t diskUsage(const std::string& path);

// The canonical absolute path (symlinks resolved); an error when it does not exist.
Result<std::string> realPath(const std::string& path);

}  // namespace agora
