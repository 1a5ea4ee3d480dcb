// The ZooKeeper client against a real ZooKeeper server.

#include <gtest/gtest.h>

#include <zookeeper/zookeeper.h>

#include <algorithm>
#include <future>
#include <thread>

#include "common/event_loop.hpp"
#include "common/zookeeper.hpp"
#include "tests/support/loop_thread.hpp"
#include "tests/support/process_cluster.hpp"
#include "tests/support/zookeeper_server.hpp"

namespace agora::testing {
namespace {

class ZooKeeperTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.start().ok()); }

  std::unique_ptr<ZooKeeperClient> connect(LoopThread& thread,
                                           std::function<void(const ZooKeeper::WatchEvent&)>
                                               onWatch = nullptr,
                                           Duration timeout = seconds(10)) {
    auto connected = std::make_shared<std::promise<void>>();
    auto once = std::make_shared<bool>(false);
    std::unique_ptr<ZooKeeperClient> zk;
    thread.sync([&] {
      zk = std::make_unique<ZooKeeperClient>(thread.loop(), server_.address(), timeout);
      zk->addSessionListener([connected, once](ZooKeeper::Session s) {
        if (s == ZooKeeper::Session::kConnected && !*once) {
          *once = true;
          connected->set_value();
        }
      });
      if (onWatch) {
        zk->addWatchListener(std::move(onWatch));
      }
    });
    EXPECT_EQ(connected->get_future().wait_for(std::chrono::seconds(20)),
              std::future_status::ready);
    return zk;
  }

  ZooKeeperServer server_;
};

// Calls a ZooKeeper operation on the loop and waits for its rc.
template <typename Op>
int call(LoopThread& thread, Op op) {
  std::promise<int> rc;
  thread.loop().post([&] { op([&](int r) { rc.set_value(r); }); });
  return rc.get_future().get();
}

TEST_F(ZooKeeperTest, CreatesReadsWritesWithVersionsAndMulti) {
  LoopThread thread;
  auto zk = connect(thread);
  EXPECT_EQ(call(thread, [&](auto done) { zkCreatePath(*zk, "/agora/a/b", done); }), ZOK);
  EXPECT_EQ(call(thread, [&](auto done) { zkCreatePath(*zk, "/agora/a/b", done); }), ZOK);

  std::string data;
  ZkStat stat;
  EXPECT_EQ(call(thread, [&](auto done) {
              zk->set("/agora/a/b", "hello", -1, [&, done](int rc, ZkStat s) {
                stat = s;
                done(rc);
              });
            }),
            ZOK);
  EXPECT_EQ(stat.version, 1);
  EXPECT_EQ(call(thread, [&](auto done) {
              zk->get("/agora/a/b", false, [&, done](int rc, std::string d, ZkStat s) {
                data = d;
                done(rc);
              });
            }),
            ZOK);
  EXPECT_EQ(data, "hello");

  // A stale version is refused.
  EXPECT_EQ(call(thread, [&](auto done) {
              zk->set("/agora/a/b", "stale", 0, [done](int rc, ZkStat) { done(rc); });
            }),
            ZBADVERSION);

  // A multi is all or nothing.
  EXPECT_EQ(call(thread, [&](auto done) {
              zk->multi({ZkOp::create("/agora/a/c", "x"), ZkOp::check("/agora/a/b", 0)}, done);
            }),
            ZBADVERSION);
  EXPECT_EQ(call(thread, [&](auto done) {
              zk->exists("/agora/a/c", false, [done](int rc, ZkStat) { done(rc); });
            }),
            ZNONODE);
  EXPECT_EQ(call(thread, [&](auto done) {
              zk->multi({ZkOp::create("/agora/a/c", "x"), ZkOp::check("/agora/a/b", 1),
                         ZkOp::set("/agora/a/b", "both", 1)},
                        done);
            }),
            ZOK);
  std::vector<std::string> children;
  EXPECT_EQ(call(thread, [&](auto done) {
              zk->getChildren("/agora/a", false, [&, done](int rc, std::vector<std::string> c) {
                children = c;
                done(rc);
              });
            }),
            ZOK);
  std::sort(children.begin(), children.end());
  EXPECT_EQ(children, (std::vector<std::string>{"b", "c"}));
  thread.sync([&] { zk.reset(); });
}

TEST_F(ZooKeeperTest, EphemeralSequentialNodesAndWatches) {
  LoopThread thread;
  std::promise<ZooKeeper::WatchEvent> fired;
  auto watcher = connect(thread, [&](const ZooKeeper::WatchEvent& e) { fired.set_value(e); });
  auto owner = connect(thread);
  ASSERT_EQ(call(thread, [&](auto done) { zkCreatePath(*owner, "/election", done); }), ZOK);

  std::string first;
  std::string second;
  ASSERT_EQ(call(thread, [&](auto done) {
              owner->create("/election/m_", "one", true, true, [&, done](int rc, std::string p) {
                first = p;
                done(rc);
              });
            }),
            ZOK);
  ASSERT_EQ(call(thread, [&](auto done) {
              owner->create("/election/m_", "two", true, true, [&, done](int rc, std::string p) {
                second = p;
                done(rc);
              });
            }),
            ZOK);
  EXPECT_LT(first, second);  // sequence numbers grow
  EXPECT_EQ(first.rfind("/election/m_", 0), 0u);

  // Watch the children, then end the owner's session: its ephemeral nodes go.
  ASSERT_EQ(call(thread, [&](auto done) {
              watcher->getChildren("/election", true,
                                   [done](int rc, std::vector<std::string>) { done(rc); });
            }),
            ZOK);
  thread.sync([&] { owner.reset(); });
  auto future = fired.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_EQ(future.get().path, "/election");
  std::vector<std::string> left;
  EXPECT_EQ(call(thread, [&](auto done) {
              watcher->getChildren("/election", false, [&, done](int rc, std::vector<std::string> c) {
                left = c;
                done(rc);
              });
            }),
            ZOK);
  EXPECT_TRUE(left.empty());
  thread.sync([&] { watcher.reset(); });
}

TEST_F(ZooKeeperTest, OperationsFailCleanlyWhileTheServerIsDownAndWorkAfter) {
  LoopThread thread;
  auto zk = connect(thread);
  server_.stop();
  int rc = call(thread, [&](auto done) {
    zk->exists("/", false, [done](int rc, ZkStat) { done(rc); });
  });
  EXPECT_NE(rc, ZOK) << zkError(rc);
  ASSERT_TRUE(server_.start().ok());
  EXPECT_TRUE(waitUntil(
      [&] {
        return call(thread, [&](auto done) {
                 zk->exists("/", false, [done](int rc, ZkStat) { done(rc); });
               }) == ZOK;
      },
      seconds(30)));
  thread.sync([&] { zk.reset(); });
}

TEST(ZkUrlTest, ParsesAndRejects) {
  auto url = parseZkUrl("zk://h1:2181,h2:2181/agora/");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->servers, "h1:2181,h2:2181");
  EXPECT_EQ(url->path, "/agora");
  for (const char* bad : {"h1:2181/agora", "zk://h1:2181", "zk:///agora", "zk://h1:2181/",
                          "zk://h 1:2181/a", "zk://h1:2181/a//b"}) {
    EXPECT_FALSE(parseZkUrl(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace agora::testing
