#include <gtest/gtest.h>

#include "common/fs.hpp"
#include "common/manual_loop.hpp"
#include "master/registry/registry.hpp"
#include "tests/support/temp_dir.hpp"

namespace agora::master {
namespace {

registry::Operation admit(const std::string& id, const std::string& host = "h") {
  registry::Operation op;
  op.mutable_admit_agent()->set_id(id);
  op.mutable_admit_agent()->set_hostname(host);
  return op;
}

registry::Operation addFramework(const std::string& id, double failoverTimeout = 0) {
  registry::Operation op;
  op.mutable_add_framework()->set_id(id);
  op.mutable_add_framework()->set_name("f");
  op.mutable_add_framework()->set_failover_timeout(failoverTimeout);
  return op;
}

// Applies and runs the loop until the write is done; returns its status.
Status applyNow(ManualLoop& loop, Registry& registry, registry::Operation op) {
  std::optional<Status> result;
  registry.apply(std::move(op), [&](Status s) { result = s; });
  loop.runUntilIdle();
  EXPECT_TRUE(result.has_value());
  return result.value_or(Error("no answer"));
}

Result<RegistryState> recoverNow(ManualLoop& loop, Registry& registry) {
  std::optional<Result<RegistryState>> result;
  registry.recover([&](Result<RegistryState> s) { result = std::move(s); });
  loop.runUntilIdle();
  EXPECT_TRUE(result.has_value());
  return result.value_or(Result<RegistryState>(Error("no answer")));
}

TEST(RegistryStateTest, AppliesOperations) {
  RegistryState state;
  EXPECT_TRUE(state.apply(admit("a1"), 1).ok());
  EXPECT_TRUE(state.apply(addFramework("f1", 60), 1).ok());
  registry::Operation unreachable;
  unreachable.mutable_mark_unreachable()->set_agent_id("a1");
  EXPECT_TRUE(state.apply(unreachable, 2).ok());
  EXPECT_TRUE(state.agents.at("a1").unreachable());
  EXPECT_DOUBLE_EQ(state.agents.at("a1").since(), 2);
  unreachable.mutable_mark_unreachable()->set_agent_id("nobody");
  EXPECT_FALSE(state.apply(unreachable, 2).ok());
  EXPECT_TRUE(state.apply(admit("a1"), 3).ok());  // back from unreachable
  EXPECT_FALSE(state.agents.at("a1").unreachable());
  EXPECT_FALSE(state.apply(admit("bad/id"), 3).ok());
  EXPECT_FALSE(state.apply(registry::Operation(), 3).ok());
  registry::Operation remove;
  remove.set_remove_framework("f1");
  EXPECT_TRUE(state.apply(remove, 4).ok());
  EXPECT_TRUE(state.frameworks.empty());
}

TEST(RegistryBlobTest, RefusesAnythingButAWholeIntactBlob) {
  std::string blob = encodeRegistryBlob("payload bytes");
  EXPECT_EQ(*decodeRegistryBlob(blob, "x"), "payload bytes");
  EXPECT_FALSE(decodeRegistryBlob(blob.substr(0, blob.size() - 1), "x").ok());  // truncated
  EXPECT_FALSE(decodeRegistryBlob(blob + "x", "x").ok());                         // trailing
  std::string flipped = blob;
  flipped.back() ^= 1;
  auto corrupt = decodeRegistryBlob(flipped, "x");
  ASSERT_FALSE(corrupt.ok());
  EXPECT_NE(corrupt.error().find("checksum"), std::string::npos);
  EXPECT_FALSE(decodeRegistryBlob("", "x").ok());
  EXPECT_FALSE(decodeRegistryBlob("garbage that is long enough", "x").ok());
}

TEST(FileRegistryTest, SurvivesARestartAndRefusesCorruptData) {
  agora::testing::TempDir dir;
  std::string path = dir.path() + "/registry";
  ManualLoop loop;
  {
    FileRegistry registry(loop, path);
    ASSERT_TRUE(recoverNow(loop, registry).ok());
    EXPECT_TRUE(applyNow(loop, registry, admit("a1")).ok());
    EXPECT_TRUE(applyNow(loop, registry, addFramework("f1", 30)).ok());
  }
  {
    FileRegistry registry(loop, path);
    auto state = recoverNow(loop, registry);
    ASSERT_TRUE(state.ok()) << state.error();
    EXPECT_EQ(state->agents.size(), 1u);
    EXPECT_DOUBLE_EQ(state->frameworks.at("f1").info().failover_timeout(), 30);
  }
  // Truncated: refused, not half-loaded.
  std::string blob = *readFile(path);
  ASSERT_TRUE(writeFileAtomic(path, blob.substr(0, blob.size() / 2)).ok());
  FileRegistry truncated(loop, path);
  auto state = recoverNow(loop, truncated);
  ASSERT_FALSE(state.ok());
  EXPECT_NE(state.error().find("truncated"), std::string::npos) << state.error();
  // A flipped byte: refused.
  std::string flipped = blob;
  flipped[flipped.size() - 3] ^= 0x40;
  ASSERT_TRUE(writeFileAtomic(path, flipped).ok());
  FileRegistry corrupt(loop, path);
  state = recoverNow(loop, corrupt);
  ASSERT_FALSE(state.ok());
  EXPECT_NE(state.error().find("corrupt"), std::string::npos) << state.error();
}

TEST(InMemoryRegistryTest, BatchesWhileAWriteIsInFlight) {
  ManualLoop loop;
  InMemoryRegistry registry(loop);
  ASSERT_TRUE(recoverNow(loop, registry).ok());
  int done = 0;
  for (int i = 0; i < 100; ++i) {
    registry.apply(admit("a" + std::to_string(i)), [&](Status s) {
      EXPECT_TRUE(s.ok());
      ++done;
    });
  }
  loop.runUntilIdle();
  EXPECT_EQ(done, 100);
  EXPECT_EQ(registry.operationsWritten(), 100u);
  EXPECT_EQ(registry.writes(), 2u);  // the first alone, the other 99 together
}

}  // namespace
}  // namespace agora::master
