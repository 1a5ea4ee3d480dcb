#include <gtest/gtest.h>

#include "common/fs.hpp"
#include "frameworks/k8s-like/store/store.hpp"
#include "tests/support/temp_dir.hpp"

namespace agora::kube {
namespace {

using nlohmann::json;

TEST(KubeStoreTest, OneVersionAcrossObjectsConflictsAndWatchesFromAVersion) {
  agora::testing::TempDir dir;
  auto store = FileStore::open(dir.path(), {});
  ASSERT_TRUE(store.ok()) << store.error();
  FileStore& s = **store;

  Outcome web = s.create("pods/default/web", {{"spec", 1}});
  ASSERT_TRUE(web.ok());
  EXPECT_EQ(web.object.version, 1u);
  EXPECT_EQ(s.create("pods/default/web", json::object()).code, StoreCode::kAlreadyExists);
  Outcome db = s.create("pods/default/db", {{"spec", 2}});
  EXPECT_EQ(db.object.version, 2u);
  EXPECT_EQ(s.create("configmaps/default/c", json::object()).object.version, 3u);

  // An update at a stale version is a conflict; at the current one, or unconditional, it goes.
  EXPECT_EQ(s.update("pods/default/web", {{"spec", 9}}, 7).code, StoreCode::kConflict);
  Outcome updated = s.update("pods/default/web", {{"spec", 3}}, 1);
  ASSERT_TRUE(updated.ok()) << updated.message;
  EXPECT_EQ(updated.object.version, 4u);
  EXPECT_EQ(s.update("pods/default/nothing", json::object()).code, StoreCode::kNotFound);

  uint64_t listed = 0;
  auto pods = s.list("pods/default/", &listed);
  ASSERT_EQ(pods.size(), 2u);
  EXPECT_EQ(pods[0].key, "pods/default/db");
  EXPECT_EQ(listed, 4u);

  // A watch from version 2 sees what came after it under its prefix, then what comes next.
  std::vector<std::string> seen;
  Outcome watch = s.watch("pods/", 2, [&](const WatchEvent& e) {
    seen.push_back(std::to_string(e.type) + ":" + e.object.key + "@" +
                   std::to_string(e.object.version));
  });
  ASSERT_TRUE(watch.ok());
  EXPECT_EQ(seen, std::vector<std::string>{"1:pods/default/web@4"});
  ASSERT_TRUE(s.remove("pods/default/db").ok());
  EXPECT_EQ(seen.back(), "2:pods/default/db@5");
  s.cancel(watch.object.version);
  ASSERT_TRUE(s.create("pods/default/late", json::object()).ok());
  EXPECT_EQ(seen.size(), 2u);
}

TEST(KubeStoreTest, SurvivesAReopenThroughSnapshotsAndTheLogAndForgetsOldHistory) {
  agora::testing::TempDir dir;
  FileStore::Options options;
  options.snapshotEvery = 3;
  options.history = 2;
  {
    auto store = FileStore::open(dir.path(), options);
    ASSERT_TRUE(store.ok());
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE((*store)->create("cm/ns/c" + std::to_string(i), {{"i", i}}).ok());
    }
    ASSERT_TRUE((*store)->remove("cm/ns/c0").ok());
    ASSERT_TRUE((*store)->update("cm/ns/c1", {{"i", 11}}).ok());
    // History holds the last two changes only: older versions are gone.
    EXPECT_EQ((*store)->watch("", 2, [](const WatchEvent&) {}).code, StoreCode::kGone);
  }
  // A torn last record (a crash while appending) is not a change.
  std::string log = readFile(dir.path() + "/log").value_or("");
  ASSERT_TRUE(writeFileAtomic(dir.path() + "/log", log + std::string("\x20\0\0\0", 4)).ok());

  auto reopened = FileStore::open(dir.path(), options);
  ASSERT_TRUE(reopened.ok()) << reopened.error();
  FileStore& s = **reopened;
  EXPECT_EQ(s.version(), 7u);
  EXPECT_EQ(s.get("cm/ns/c0").code, StoreCode::kNotFound);
  EXPECT_EQ(s.get("cm/ns/c1").object.value["i"], 11);
  EXPECT_EQ(s.get("cm/ns/c1").object.version, 7u);
  EXPECT_EQ(s.get("cm/ns/c4").object.version, 5u);
  EXPECT_EQ(s.list("cm/").size(), 4u);
  EXPECT_EQ(s.create("cm/ns/c5", json::object()).object.version, 8u);
  // The torn end was cut: what came after it reads back.
  EXPECT_EQ((*FileStore::open(dir.path(), options))->get("cm/ns/c5").object.version, 8u);

  // A log record that fails its checksum before the end: the store refuses to open.
  std::string damaged = readFile(dir.path() + "/log").value_or("");
  ASSERT_GT(damaged.size(), 12u);
  damaged[10] ^= 1;
  ASSERT_TRUE(writeFileAtomic(dir.path() + "/log", damaged + damaged).ok());
  EXPECT_FALSE(FileStore::open(dir.path(), options).ok());
}

}  // namespace
}  // namespace agora::kube
