#include "agent/checkpoint.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/crc32.hpp"
#include "common/fs.hpp"

namespace agora::agent::checkpoint {

namespace {

void putU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) {
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
}

uint32_t getU32(const std::string& in, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    v |= static_cast<uint32_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  }
  return v;
}

template <typename Message>
Result<Message> parseFile(const std::string& path) {
  auto text = readFile(path);
  if (!text) {
    return Error(text.error());
  }
  Message message;
  if (!message.ParseFromString(*text)) {
    return Error(path + " is corrupt: it does not parse");
  }
  return message;
}

}  // namespace

std::string agentPath(const std::string& meta) { return meta + "/agent"; }
std::string executorsDir(const std::string& meta) { return meta + "/executors"; }
std::string executorPath(const std::string& meta, const std::string& containerId) {
  return executorsDir(meta) + "/" + containerId;
}
std::string updatesDir(const std::string& meta) { return meta + "/updates"; }

std::string bootId() {
  auto id = readFile("/proc/sys/kernel/random/boot_id");
  if (!id) {
    return "";
  }
  std::string out = *id;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
    out.pop_back();
  }
  return out;
}

Result<std::optional<AgentRecord>> readAgent(const std::string& meta) {
  if (!pathExists(agentPath(meta))) {
    return std::optional<AgentRecord>();
  }
  auto record = parseFile<AgentRecord>(agentPath(meta));
  if (!record) {
    return Error(record.error());
  }
  return std::optional<AgentRecord>(std::move(*record));
}

Status writeAgent(const std::string& meta, const AgentRecord& record) {
  if (Status made = makeDirectories(meta); !made) {
    return made;
  }
  return writeFileAtomic(agentPath(meta), record.SerializeAsString());
}

Status writeExecutor(const std::string& meta, const ExecutorRecord& record) {
  if (Status made = makeDirectories(executorsDir(meta)); !made) {
    return made;
  }
  return writeFileAtomic(executorPath(meta, record.container_id()), record.SerializeAsString());
}

Status removeExecutor(const std::string& meta, const std::string& containerId) {
  if (::unlink(executorPath(meta, containerId).c_str()) != 0 && errno != ENOENT) {
    return Error("cannot remove " + executorPath(meta, containerId) + ": " + std::strerror(errno));
  }
  return ok();
}

std::vector<std::string> listDirectory(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return out;
  }
  while (dirent* entry = ::readdir(d)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") {
      out.push_back(std::move(name));
    }
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Executors readExecutors(const std::string& meta) {
  Executors out;
  for (const std::string& name : listDirectory(executorsDir(meta))) {
    if (name.find(".tmp.") != std::string::npos) {
      ::unlink(executorPath(meta, name).c_str());  // an atomic write that did not finish
      continue;
    }
    auto record = parseFile<ExecutorRecord>(executorPath(meta, name));
    if (!record) {
      out.errors.push_back(record.error());
    } else if (record->container_id() != name) {
      out.errors.push_back(executorPath(meta, name) + " is corrupt: it names container '" +
                           record->container_id() + "'");
    } else {
      out.records.push_back(std::move(*record));
    }
  }
  return out;
}

Status appendUpdate(const std::string& path, const UpdateRecord& record) {
  std::string body = record.SerializeAsString();
  std::string frame;
  frame.reserve(body.size() + 8);
  putU32(frame, static_cast<uint32_t>(body.size()));
  putU32(frame, crc32(body));
  frame += body;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Error("cannot open " + path + ": " + std::strerror(errno));
  }
  size_t written = 0;
  while (written < frame.size()) {
    ssize_t n = ::write(fd, frame.data() + written, frame.size() - written);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      std::string error = std::strerror(errno);
      ::close(fd);
      return Error("cannot append to " + path + ": " + error);
    }
    written += static_cast<size_t>(n);
  }
  if (::fdatasync(fd) != 0) {
    std::string error = std::strerror(errno);
    ::close(fd);
    return Error("cannot sync " + path + ": " + error);
  }
  ::close(fd);
  return ok();
}

Result<UpdateLog> readUpdates(const std::string& path) {
  auto data = readFile(path);
  if (!data) {
    return Error(data.error());
  }
  UpdateLog log;
  size_t at = 0;
  while (at < data->size()) {
    if (data->size() - at < 8) {
      log.tornTail = true;
      break;
    }
    uint32_t length = getU32(*data, at);
    uint32_t crc = getU32(*data, at + 4);
    if (data->size() - at - 8 < length) {
      log.tornTail = true;
      break;
    }
    std::string_view body(data->data() + at + 8, length);
    bool last = at + 8 + length == data->size();
    UpdateRecord record;
    if (crc32(body) != crc || !record.ParseFromArray(body.data(), static_cast<int>(length))) {
      if (last) {
        log.tornTail = true;
        break;
      }
      return Error(path + " is corrupt: the record at byte " + std::to_string(at) +
                   " fails its checksum");
    }
    log.records.push_back(std::move(record));
    at += 8 + length;
  }
  return log;
}

}  // namespace agora::agent::checkpoint
