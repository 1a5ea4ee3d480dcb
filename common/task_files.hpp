#pragma once

// Where an executor writes the files a framework gives a task (ContainerInfo.files) before
// mounting each over its path in the container: memory (/dev/shm), never disk, as they may
// hold Secrets; one directory per task, one file per path. A framework's helper on the same
// machine (the kube framework's node proxy) may rewrite a file there in place, and the
// container sees the new content at once (a bind mount follows the file, not its name).

#include <cstdio>
#include <string>

namespace agora {

// A task labelled agora.io/stdin=true reads its stdin from a pipe (a FIFO) at
// <its sandbox>/stdin, which stays open while it runs: what a remote `kubectl attach -i`
// writes there reaches it. With agora.io/stdin=once (a pod's stdinOnce), it is open until the
// first writer that announced itself (by creating <sandbox>/stdin.attached) is gone: then the
// task reads its end.
inline constexpr const char* kStdinLabel = "agora.io/stdin";
inline constexpr const char* kStdinAttached = "stdin.attached";

// Letters, digits and "-._" as they are; anything else as %XX.
inline std::string encodeFileName(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_') {
      out += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof(hex), "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

inline std::string taskFilesDirectory(const std::string& taskId) {
  return "/dev/shm/agora-files/" + encodeFileName(taskId);
}

inline std::string taskFilePath(const std::string& taskId, const std::string& containerPath) {
  return taskFilesDirectory(taskId) + "/" + encodeFileName(containerPath);
}

}  // namespace agora
