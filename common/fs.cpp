#include <dirent.h>
#include "common/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace agora {

Status makeDirectories(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    return Error("cannot create directory " + path + ": " + ec.message());
  }
  return ok();
}

Status writeFileAtomic(const std::string& path, const std::string& content, mode_t mode) {
  std::string temp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    return Error("cannot write " + temp + ": " + std::strerror(errno));
  }
  size_t written = 0;
  while (written < content.size()) {
    ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      std::string error = std::strerror(errno);
      ::close(fd);
      ::unlink(temp.c_str());
      return Error("cannot write " + temp + ": " + error);
    }
    written += static_cast<size_t>(n);
  }
  // open(2) applies the umask; a secret's mode must be exactly what was asked.
  if (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0) {
    std::string error = std::strerror(errno);
    ::close(fd);
    ::unlink(temp.c_str());
    return Error("cannot fsync " + temp + ": " + error);
  }
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    std::string error = std::strerror(errno);
    ::unlink(temp.c_str());
    return Error("cannot rename " + temp + " to " + path + ": " + error);
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  int dirFd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirFd >= 0) {
    ::fsync(dirFd);
    ::close(dirFd);
  }
  return ok();
}

Result<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error("cannot read " + path + ": " + std::strerror(errno));
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool pathExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

Status removeAll(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) {
    return Error("cannot remove " + path + ": " + ec.message());
  }
  return ok();
}

Result<std::string> realPath(const std::string& path) {
  char buffer[PATH_MAX];
  if (::realpath(path.c_str(), buffer) == nullptr) {
    return Error(path + ": " + std::strerror(errno));
  }
  return std::string(buffer);
}

}  // namespace agora

namespace agora {

uint64_t diskUsage(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    return 0;
  }
  uint64_t total = static_cast<uint64_t>(st.st_blocks) * 512;
  if (!S_ISDIR(st.st_mode)) {
    return total;
  }
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) {
    return total;
  }
  while (struct dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") {
      total += diskUsage(path + "/" + name);
    }
  }
  ::closedir(dir);
  return total;
}

}  // namespace agora
