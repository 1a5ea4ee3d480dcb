// The image store with real archives: the test makes OCI and `docker save` tarballs itself
// (busybox from Debian's busybox-static, two layers, a whiteout), imports them, and checks that
// every bad archive is refused with the store left as it was. Needs root (files keep owners,
// whiteouts are device nodes).

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "isolators/images/store.hpp"
#include "tests/support/temp_dir.hpp"

namespace agora::images {
namespace {

using nlohmann::json;

// A layer's tar, in memory.
std::string layerTar(const std::string& dir, const std::vector<TarEntry>& entries) {
  std::string path = dir + "/layer-" + std::to_string(std::rand()) + ".tar";
  EXPECT_TRUE(writeTar(path, entries).ok());
  std::string data = readFile(path).value_or("");
  ::unlink(path.c_str());
  return data;
}

// Every path in the store, and what kind it is: to see that a refused import changed nothing.
std::string snapshot(const std::string& store) {
  std::string out;
  std::error_code ec;
  if (!std::filesystem::exists(store, ec)) return out;
  for (auto it = std::filesystem::recursive_directory_iterator(store, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::string p = it->path().string().substr(store.size());
    if (p == "/lock" || p == "/tmp") continue;
    out += p + "\n";
  }
  return out;
}

class ImageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "importing images needs root";
    }
    ASSERT_TRUE(pathExists("/bin/busybox")) << "Debian's busybox-static is needed";
    busybox_ = readFile("/bin/busybox").value_or("");
    base_ = layerTar(dir_.path(), {{"bin", 'd', "", "", 0755},
                                   {"bin/busybox", 'f', busybox_, "", 04755},
                                   {"bin/sh", 'l', "", "busybox", 0777},
                                   {"bin/ls", 'h', "", "bin/busybox"},
                                   {"etc", 'd', "", "", 0755},
                                   {"etc/hello", 'f', "hello\n"},
                                   {"etc/gone", 'f', "soon gone\n"},
                                   {"var", 'd', "", "", 0755},
                                   {"var/old", 'f', "old\n"}});
    top_ = layerTar(dir_.path(), {{"etc", 'd', "", "", 0755},
                                  {"etc/.wh.gone", 'f', ""},
                                  {"etc/added", 'f', "added\n"},
                                  {"var", 'd', "", "", 0755},
                                  {"var/.wh..wh..opq", 'f', ""},
                                  {"var/new", 'f', "new\n"}});
    config_.entrypoint = {"/bin/sh", "-c"};
    config_.cmd = {"ls /"};
    config_.env = {"GREETING=hi", "PATH=/bin"};
    config_.workingDir = "/etc";
    config_.exposedPorts = {"80/tcp"};
    store_ = dir_.path() + "/store";
  }

  // Writes an archive from (possibly altered) layout entries; returns its path.
  std::string archive(const std::vector<TarEntry>& entries) {
    std::string path = dir_.path() + "/image-" + std::to_string(++archives_) + ".tar";
    EXPECT_TRUE(writeTar(path, entries).ok());
    return path;
  }

  // Imports a bad archive: refused with `why` in the message, and the store as it was.
  void expectRefused(const std::string& path, const std::string& why) {
    Store store(store_);
    std::string before = snapshot(store_);
    auto image = store.import(path, "bad:1");
    ASSERT_FALSE(image.ok()) << why;
    EXPECT_NE(image.error().find(why), std::string::npos) << image.error();
    EXPECT_EQ(snapshot(store_), before) << why;
    std::error_code ec;
    EXPECT_TRUE(std::filesystem::is_empty(store_ + "/tmp", ec) ||
                !std::filesystem::exists(store_ + "/tmp", ec));
  }

  agora::testing::TempDir dir_;
  std::string busybox_;
  std::string base_;
  std::string top_;
  RunConfig config_;
  std::string store_;
  int archives_ = 0;
};

TEST_F(ImageStoreTest, AnOciArchiveIsCheckedAndUnpackedWithItsWhiteouts) {
  Store store(store_);
  auto image = store.import(archive(ociLayout({base_, top_}, config_, "tiny:1")));
  ASSERT_TRUE(image.ok()) << image.error();
  EXPECT_EQ(image->names, std::vector<std::string>{"tiny:1"});
  ASSERT_EQ(image->layers.size(), 2u);
  EXPECT_EQ(image->layers[0], sha256Bytes(base_));
  EXPECT_EQ(image->config.entrypoint, config_.entrypoint);
  EXPECT_EQ(image->config.cmd, config_.cmd);
  EXPECT_EQ(image->config.env, config_.env);
  EXPECT_EQ(image->config.workingDir, "/etc");
  EXPECT_EQ(image->config.exposedPorts, std::vector<std::string>{"80/tcp"});

  std::string base = store.layerPath(image->layers[0]);
  std::string top = store.layerPath(image->layers[1]);
  struct stat st;
  ASSERT_EQ(::stat((base + "/bin/busybox").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u) << "the setuid bit is dropped";
  EXPECT_EQ(st.st_nlink, 2u) << "bin/ls is a hard link to it";
  char link[64] = {0};
  ASSERT_GT(::readlink((base + "/bin/sh").c_str(), link, sizeof(link) - 1), 0);
  EXPECT_STREQ(link, "busybox");
  // The whiteout is overlayfs's: a 0:0 character device; the opaque directory is marked.
  ASSERT_EQ(::lstat((top + "/etc/gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
  char opaque[4] = {0};
  EXPECT_EQ(::getxattr((top + "/var").c_str(), "trusted.overlay.opaque", opaque, sizeof(opaque)),
            1);
  EXPECT_EQ(opaque[0], 'y');
  EXPECT_EQ(readFile(top + "/etc/added").value_or(""), "added\n");

  // Found by name ("tiny" would be tiny:latest), by id and by a prefix of it.
  EXPECT_TRUE(store.find("tiny:1").ok());
  EXPECT_FALSE(store.find("tiny").ok());
  EXPECT_EQ(store.find(image->id.substr(7, 12))->id, image->id);
  // The same image again changes nothing; a second image shares the base layer, which stays
  // when the first goes.
  ASSERT_TRUE(store.import(archive(ociLayout({base_, top_}, config_, "tiny:1"))).ok());
  std::string other = layerTar(dir_.path(), {{"etc", 'd', "", "", 0755}, {"etc/x", 'f', "x"}});
  ASSERT_TRUE(store.import(archive(ociLayout({base_, other}, config_, "other:2"))).ok());
  EXPECT_EQ(store.list()->size(), 2u);
  ASSERT_TRUE(store.remove("tiny:1").ok());
  EXPECT_TRUE(pathExists(base));
  EXPECT_FALSE(pathExists(top));
  EXPECT_FALSE(store.find("tiny:1").ok());
  EXPECT_NE(store.find("tiny:1").error().find("agora image import"), std::string::npos);

  // Garbage: a layer no image uses, an import abandoned long ago; the used layer stays.
  ASSERT_TRUE(makeDirectories(store_ + "/layers/" + std::string(64, 'f') + "/etc").ok());
  ASSERT_TRUE(makeDirectories(store_ + "/tmp/import-abandoned").ok());
  EXPECT_EQ(store.collectGarbage(Duration::zero()), 2);
  EXPECT_TRUE(pathExists(base));
  EXPECT_FALSE(pathExists(store_ + "/tmp/import-abandoned"));
}

TEST_F(ImageStoreTest, ADockerSaveArchiveAndABuiltRootfs) {
  // docker save: manifest.json, the config named by its digest, a directory per layer.
  std::string configJson =
      json{{"config", {{"Entrypoint", {"/bin/sh"}}, {"Cmd", {"-c", "echo hi"}}}},
           {"rootfs", {{"type", "layers"}, {"diff_ids", {sha256Bytes(base_)}}}}}
          .dump();
  std::string configName = sha256Bytes(configJson).substr(7) + ".json";
  Store store(store_);
  auto image = store.import(archive({
      {"manifest.json", 'f',
       json::array({{{"Config", configName},
                     {"RepoTags", {"saved:latest"}},
                     {"Layers", {"abc/layer.tar"}}}})
           .dump()},
      {configName, 'f', configJson},
      {"abc", 'd', "", "", 0755},
      {"abc/layer.tar", 'f', base_},
  }));
  ASSERT_TRUE(image.ok()) << image.error();
  EXPECT_EQ(image->names, std::vector<std::string>{"saved:latest"});
  EXPECT_EQ(image->config.cmd, (std::vector<std::string>{"-c", "echo hi"}));
  EXPECT_TRUE(store.find("saved").ok());

  // A directory tree as a one-layer image.
  std::string tree = dir_.path() + "/tree";
  ASSERT_TRUE(makeDirectories(tree + "/bin").ok());
  ASSERT_TRUE(writeFileAtomic(tree + "/bin/hello", "#!/bin/sh\necho hello\n").ok());
  ASSERT_EQ(::chmod((tree + "/bin/hello").c_str(), 0755), 0);
  RunConfig run;
  run.entrypoint = {"/bin/hello"};
  auto built = store.buildFromDirectory(tree, "built", run);
  ASSERT_TRUE(built.ok()) << built.error();
  EXPECT_EQ(built->names, std::vector<std::string>{"built:latest"});
  EXPECT_EQ(built->config.entrypoint, run.entrypoint);
  EXPECT_EQ(readFile(store.layerPath(built->layers[0]) + "/bin/hello").value_or(""),
            "#!/bin/sh\necho hello\n");
}

TEST_F(ImageStoreTest, BadArchivesAreRefusedAndLeaveTheStoreAsItWas) {
  Store store(store_);
  ASSERT_TRUE(store.import(archive(ociLayout({base_}, config_, "good:1"))).ok());

  auto layout = [&](std::vector<std::string> layers, const std::string& type =
                                                          "application/vnd.oci.image.layer.v1.tar") {
    return ociLayout(layers, config_, "bad:1", type);
  };
  // A blob whose content is not its digest.
  auto mismatch = layout({base_, top_});
  for (TarEntry& e : mismatch) {
    if (e.path == "blobs/sha256/" + sha256Bytes(top_).substr(7)) e.data[e.data.size() / 2] ^= 1;
  }
  expectRefused(archive(mismatch), "digest mismatch for blob " + sha256Bytes(top_));
  // A blob that is not there.
  auto missing = layout({base_, top_});
  std::erase_if(missing, [&](const TarEntry& e) {
    return e.path == "blobs/sha256/" + sha256Bytes(top_).substr(7);
  });
  expectRefused(archive(missing), "missing blob " + sha256Bytes(top_));
  // Layer paths that leave the root, directly or through a symlink.
  expectRefused(archive(layout({layerTar(dir_.path(), {{"../escaped", 'f', "x"}})})),
                "leaves the root");
  expectRefused(archive(layout({layerTar(dir_.path(), {{"evil", 'l', "", "/etc"},
                                                       {"evil/agora-pwned", 'f', "x"}})})),
                "goes through the symlink 'evil'");
  expectRefused(archive(layout({layerTar(dir_.path(), {{"a", 'd'}, {"a/up", 'l', "", "../../etc"}})})),
                "points out of the root");
  // A media type Agora does not unpack.
  expectRefused(archive(layout({base_}, "application/vnd.oci.image.layer.v1.tar+zstd")),
                "unsupported media type application/vnd.oci.image.layer.v1.tar+zstd");
  // A truncated file.
  std::string whole = archive(layout({base_, top_}));
  ASSERT_EQ(::truncate(whole.c_str(), static_cast<off_t>(std::filesystem::file_size(whole) / 2)),
            0);
  expectRefused(whole, "truncated");
  // Not an image at all.
  expectRefused(archive({{"README", 'f', "hello"}}), "neither an OCI image layout");
  // A damaged gzip'd tarball for which libarchive has no error message (found by fuzz_oci:
  // it crashed the import).
  expectRefused(
      std::string(AGORA_SOURCE_DIR) + "/tests/fuzz/corpus/oci/regression-no-error-string.tar.gz",
      "not a readable archive");
  // A docker save manifest whose Config is not a string (found by fuzz_oci: it aborted the
  // import with an uncaught JSON type error).
  expectRefused(
      std::string(AGORA_SOURCE_DIR) + "/tests/fuzz/corpus/oci/regression-config-not-a-string.tar",
      "malformed image metadata");
  EXPECT_EQ(store.list()->size(), 1u);
}

}  // namespace
}  // namespace agora::images
