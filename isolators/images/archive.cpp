#include "isolators/images/archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "common/fs.hpp"

namespace agora::images {

namespace fs = std::filesystem;

namespace {

std::string hex(const unsigned char* data, unsigned int length) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(digits[data[i] >> 4]);
    out.push_back(digits[data[i] & 15]);
  }
  return out;
}

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  void update(const void* data, size_t length) { EVP_DigestUpdate(ctx_, data, length); }
  std::string digest() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(ctx_, out, &length);
    return "sha256:" + hex(out, length);
  }

 private:
  EVP_MD_CTX* ctx_;
};

struct ArchiveCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveCloser>;

// libarchive's last error, or what to say when it has none: archive_error_string returns null
// then (an empty file, for one), which a std::string must never be built from.
std::string archiveError(archive* a) {
  const char* why = archive_error_string(a);
  return why != nullptr ? std::string(why) : std::string("not a readable archive");
}

// Opens a (possibly compressed) tar, or with `raw` its decompressed bytes as one entry.
Result<ArchivePtr> openArchive(const std::string& path, bool raw) {
  ArchivePtr a(archive_read_new());
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_none(a.get());
  if (raw) {
    archive_read_support_format_raw(a.get());
  } else {
    archive_read_support_format_tar(a.get());
  }
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return Error("cannot read " + path + ": " + archiveError(a.get()));
  }
  return a;
}

Status writeAll(int fd, const void* data, size_t length) {
  const char* p = static_cast<const char*>(data);
  while (length > 0) {
    ssize_t n = ::write(fd, p, length);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error(std::string("write: ") + std::strerror(errno));
    }
    p += n;
    length -= static_cast<size_t>(n);
  }
  return ok();
}

Status copyData(archive* a, int fd) {
  const void* block;
  size_t size;
  la_int64_t offset;
  while (true) {
    int r = archive_read_data_block(a, &block, &size, &offset);
    if (r == ARCHIVE_EOF) return ok();
    if (r != ARCHIVE_OK) return Error("truncated or damaged: " + archiveError(a));
    if (::lseek(fd, offset, SEEK_SET) < 0) return Error(std::string("seek: ") + std::strerror(errno));
    if (Status w = writeAll(fd, block, size); !w) return w;
  }
}

// Checks that no directory on the way to `relative` (below `root`) is a symlink; makes the
// missing ones.
Status safeParents(const std::string& root, const std::string& relative) {
  std::string current = root;
  size_t start = 0;
  while (true) {
    size_t slash = relative.find('/', start);
    if (slash == std::string::npos) return ok();
    std::string part = relative.substr(start, slash - start);
    current += "/" + part;
    struct stat st;
    if (::lstat(current.c_str(), &st) == 0) {
      if (S_ISLNK(st.st_mode)) {
        return Error("path '" + relative + "' goes through the symlink '" +
                     relative.substr(0, slash) + "'");
      }
      if (!S_ISDIR(st.st_mode)) {
        return Error("path '" + relative + "' goes through '" + relative.substr(0, slash) +
                     "', which is not a directory");
      }
    } else if (::mkdir(current.c_str(), 0755) != 0) {
      return Error("cannot make " + current + ": " + std::strerror(errno));
    }
    start = slash + 1;
  }
}

// Whether a relative symlink at `path` pointing to `target` stays inside the root.
bool symlinkStaysInside(const std::string& path, const std::string& target) {
  if (!target.empty() && target[0] == '/') {
    return true;  // resolved from the container's root, inside it
  }
  int depth = static_cast<int>(std::count(path.begin(), path.end(), '/'));
  size_t start = 0;
  while (start <= target.size()) {
    size_t slash = target.find('/', start);
    std::string part = target.substr(start, slash == std::string::npos ? std::string::npos
                                                                       : slash - start);
    if (part == "..") {
      if (--depth < 0) return false;
    } else if (!part.empty() && part != ".") {
      ++depth;
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

Status removeExisting(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return ok();
  if (S_ISDIR(st.st_mode)) return ok();  // a directory stays, and takes the new mode
  if (::unlink(path.c_str()) != 0) return Error("cannot replace " + path + ": " + std::strerror(errno));
  return ok();
}

}  // namespace

// A path from an archive, relative and without "." parts; an error for one with "..".
Result<std::string> cleanPath(const std::string& raw) {
  std::string out;
  size_t start = 0;
  while (start <= raw.size()) {
    size_t slash = raw.find('/', start);
    std::string part = raw.substr(start, slash == std::string::npos ? std::string::npos
                                                                    : slash - start);
    if (part == "..") {
      return Error("path '" + raw + "' leaves the root");
    }
    if (!part.empty() && part != ".") {
      out += (out.empty() ? "" : "/") + part;
    }
    if (slash == std::string::npos) {
      break;
    }
    start = slash + 1;
  }
  return out;
}

// The outer tarball's files (an OCI layout or a docker save), into `into`.
Status extractArchive(const std::string& tarball, const std::string& into) {
  auto a = openArchive(tarball, false);
  if (!a) return Error(a.error());
  archive_entry* entry;
  while (true) {
    int r = archive_read_next_header(a->get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK) {
      return Error(tarball + " is truncated or damaged: " + archiveError(a->get()));
    }
    auto path = cleanPath(archive_entry_pathname(entry));
    if (!path) return Error(tarball + ": " + path.error());
    if (path->empty()) continue;
    std::string target = into + "/" + *path;
    mode_t type = archive_entry_filetype(entry);
    if (type == AE_IFDIR) {
      if (Status s = makeDirectories(target); !s) return s;
      continue;
    }
    if (type != AE_IFREG) continue;  // only files matter at this level
    if (Status s = makeDirectories(fs::path(target).parent_path().string()); !s) return s;
    int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return Error("cannot write " + target + ": " + std::strerror(errno));
    Status copied = copyData(a->get(), fd);
    ::close(fd);
    if (!copied) return Error(tarball + " is " + copied.error());
  }
  return ok();
}

// sha256 of what a layer blob holds uncompressed (its diff id).
Result<std::string> uncompressedDigest(const std::string& blob) {
  auto a = openArchive(blob, true);
  if (!a) return Error(a.error());
  archive_entry* entry;
  if (archive_read_next_header(a->get(), &entry) != ARCHIVE_OK) {
    return Error(blob + " cannot be read: " + archiveError(a->get()));
  }
  Sha256 sha;
  char buffer[1 << 16];
  while (true) {
    la_ssize_t n = archive_read_data(a->get(), buffer, sizeof(buffer));
    if (n == 0) break;
    if (n < 0) return Error("a layer is truncated or damaged: " + archiveError(a->get()));
    sha.update(buffer, static_cast<size_t>(n));
  }
  return sha.digest();
}

// Unpacks one layer into `root`, whiteouts in overlayfs's form.
Status unpackLayer(const std::string& blob, const std::string& root, UnpackStats* stats) {
  auto a = openArchive(blob, false);
  if (!a) return Error(a.error());
  archive_entry* entry;
  while (true) {
    int r = archive_read_next_header(a->get(), &entry);
    if (r == ARCHIVE_EOF) return ok();
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return Error("truncated or damaged: " + archiveError(a->get()));
    }
    auto path = cleanPath(archive_entry_pathname(entry));
    if (!path) return Error(path.error());
    if (path->empty()) continue;
    if (Status s = safeParents(root, *path); !s) return s;
    std::string name = fs::path(*path).filename().string();
    std::string dir = fs::path(*path).parent_path().string();
    std::string parent = dir.empty() ? root : root + "/" + dir;
    if (name == ".wh..wh..opq") {
      // Nothing of the layers below shows through this directory.
      if (::setxattr(parent.c_str(), "trusted.overlay.opaque", "y", 1, 0) != 0) {
        return Error("cannot mark " + dir + " opaque: " + std::strerror(errno));
      }
      continue;
    }
    if (name.rfind(".wh.", 0) == 0) {
      std::string hidden = parent + "/" + name.substr(4);
      if (name.size() == 4) return Error("whiteout '" + *path + "' names nothing");
      if (Status s = removeExisting(hidden); !s) return s;
      if (::mknod(hidden.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
        return Error("cannot make the whiteout for " + *path + ": " + std::strerror(errno));
      }
      continue;
    }
    std::string target = root + "/" + *path;
    mode_t type = archive_entry_filetype(entry);
    mode_t mode = archive_entry_perm(entry);
    if (mode & (S_ISUID | S_ISGID)) {
      ++stats->setuidDropped;
      mode &= ~(S_ISUID | S_ISGID);
    }
    if (archive_entry_hardlink(entry) != nullptr) {
      auto linked = cleanPath(archive_entry_hardlink(entry));
      if (!linked) return Error("hard link " + *path + ": " + linked.error());
      if (Status s = safeParents(root, *linked); !s) return Error("hard link " + *path + ": " + s.error());
      if (Status s = removeExisting(target); !s) return s;
      if (::link((root + "/" + *linked).c_str(), target.c_str()) != 0) {
        return Error("hard link " + *path + " -> " + *linked + ": " + std::strerror(errno));
      }
      continue;
    }
    switch (type) {
      case AE_IFDIR: {
        struct stat st;
        if (::lstat(target.c_str(), &st) != 0 && ::mkdir(target.c_str(), 0755) != 0) {
          return Error("cannot make " + *path + ": " + std::strerror(errno));
        }
        break;
      }
      case AE_IFREG: {
        if (Status s = removeExisting(target); !s) return s;
        int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) return Error("cannot write " + *path + ": " + std::strerror(errno));
        Status copied = copyData(a->get(), fd);
        ::close(fd);
        if (!copied) return copied;
        stats->bytes += static_cast<uint64_t>(archive_entry_size(entry));
        break;
      }
      case AE_IFLNK: {
        std::string to = archive_entry_symlink(entry) ? archive_entry_symlink(entry) : "";
        if (!symlinkStaysInside(*path, to)) {
          return Error("symlink '" + *path + "' -> '" + to + "' points out of the root");
        }
        if (Status s = removeExisting(target); !s) return s;
        if (::symlink(to.c_str(), target.c_str()) != 0) {
          return Error("cannot make the symlink " + *path + ": " + std::strerror(errno));
        }
        break;
      }
      default:
        ++stats->devicesSkipped;  // device nodes, fifos: not made from an image
        continue;
    }
    if (::lchown(target.c_str(), static_cast<uid_t>(archive_entry_uid(entry)),
                 static_cast<gid_t>(archive_entry_gid(entry))) != 0) {
      return Error("cannot give " + *path + " its owner: " + std::strerror(errno));
    }
    if (type != AE_IFLNK && ::chmod(target.c_str(), mode) != 0) {
      return Error("cannot set the mode of " + *path + ": " + std::strerror(errno));
    }
    timespec times[2] = {{archive_entry_mtime(entry), 0}, {archive_entry_mtime(entry), 0}};
    ::utimensat(AT_FDCWD, target.c_str(), times, AT_SYMLINK_NOFOLLOW);
  }
}

Result<std::string> sha256File(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error("cannot read " + path);
  Sha256 sha;
  char buffer[1 << 16];
  while (in) {
    in.read(buffer, sizeof(buffer));
    sha.update(buffer, static_cast<size_t>(in.gcount()));
  }
  return sha.digest();
}

std::string sha256Bytes(const std::string& bytes) {
  Sha256 sha;
  sha.update(bytes.data(), bytes.size());
  return sha.digest();
}

Status writeTar(const std::string& path, const std::vector<TarEntry>& entries, bool gzip) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip) archive_write_add_filter_gzip(a);
  if (archive_write_open_filename(a, path.c_str()) != ARCHIVE_OK) {
    std::string why = archiveError(a);
    archive_write_free(a);
    return Error("cannot write " + path + ": " + why);
  }
  for (const TarEntry& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.path.c_str());
    archive_entry_set_perm(entry, e.mode);
    archive_entry_set_mtime(entry, 1700000000, 0);
    switch (e.type) {
      case 'd':
        archive_entry_set_filetype(entry, AE_IFDIR);
        break;
      case 'l':
        archive_entry_set_filetype(entry, AE_IFLNK);
        archive_entry_set_symlink(entry, e.link.c_str());
        break;
      case 'h':
        archive_entry_set_filetype(entry, AE_IFREG);
        archive_entry_set_hardlink(entry, e.link.c_str());
        break;
      default:
        archive_entry_set_filetype(entry, AE_IFREG);
        archive_entry_set_size(entry, static_cast<la_int64_t>(e.data.size()));
    }
    archive_write_header(a, entry);
    if (e.type == 'f') archive_write_data(a, e.data.data(), e.data.size());
    archive_entry_free(entry);
  }
  int closed = archive_write_close(a);
  archive_write_free(a);
  return closed == ARCHIVE_OK ? ok() : Error("cannot finish " + path);
}

Status packDirectory(const std::string& directory, const std::string& tarPath) {
  archive* disk = archive_read_disk_new();
  archive_read_disk_set_standard_lookup(disk);
  archive_read_disk_set_behavior(disk, ARCHIVE_READDISK_NO_XATTR);
  archive* out = archive_write_new();
  archive_write_set_format_pax_restricted(out);
  auto fail = [&](const std::string& why) {
    archive_read_free(disk);
    archive_write_free(out);
    return Error(why);
  };
  if (archive_write_open_filename(out, tarPath.c_str()) != ARCHIVE_OK) {
    return fail("cannot write " + tarPath + ": " + archiveError(out));
  }
  if (archive_read_disk_open(disk, directory.c_str()) != ARCHIVE_OK) {
    return fail("cannot read " + directory + ": " + archiveError(disk));
  }
  archive_entry* entry = archive_entry_new();
  while (true) {
    archive_entry_clear(entry);
    int r = archive_read_next_header2(disk, entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK) {
      archive_entry_free(entry);
      return fail("cannot read " + directory + ": " + archiveError(disk));
    }
    archive_read_disk_descend(disk);
    std::string source = archive_entry_sourcepath(entry);
    std::string relative = source.size() > directory.size() ? source.substr(directory.size()) : "";
    while (!relative.empty() && relative[0] == '/') relative.erase(0, 1);
    if (relative.empty()) continue;
    archive_entry_set_pathname(entry, relative.c_str());
    archive_write_header(out, entry);
    if (archive_entry_filetype(entry) == AE_IFREG && archive_entry_size(entry) > 0) {
      int fd = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
      char buffer[1 << 16];
      ssize_t n;
      while (fd >= 0 && (n = ::read(fd, buffer, sizeof(buffer))) > 0) {
        archive_write_data(out, buffer, static_cast<size_t>(n));
      }
      if (fd >= 0) ::close(fd);
    }
  }
  archive_entry_free(entry);
  archive_read_free(disk);
  int closed = archive_write_close(out);
  archive_write_free(out);
  return closed == ARCHIVE_OK ? ok() : Error("cannot finish " + tarPath);
}

}  // namespace agora::images
