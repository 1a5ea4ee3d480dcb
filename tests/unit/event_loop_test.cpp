#include <atomic>
#include <thread>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "common/event_loop.hpp"
#include "common/manual_loop.hpp"
#include "common/zmq_transport.hpp"

namespace agora {
namespace {

TEST(ManualLoopTest, FiresTimersInDeadlineOrder) {
  ManualLoop loop;
  std::vector<int> order;
  loop.after(seconds(3), [&] { order.push_back(3); });
  loop.after(seconds(1), [&] { order.push_back(1); });
  TimerId cancelled = loop.after(seconds(2), [&] { order.push_back(2); });
  loop.after(seconds(1), [&] { order.push_back(11); });
  loop.cancel(cancelled);
  loop.advance(milliseconds(999));
  EXPECT_TRUE(order.empty());
  loop.advance(seconds(5));
  EXPECT_EQ(order, (std::vector<int>{1, 11, 3}));
}

TEST(ManualLoopTest, TimersSeeTheirOwnDeadlineAsNow) {
  ManualLoop loop;
  TimePoint start = loop.now();
  TimePoint seen;
  loop.after(seconds(2), [&] { seen = loop.now(); });
  loop.advance(seconds(10));
  EXPECT_EQ(seen - start, seconds(2));
  EXPECT_EQ(loop.now() - start, seconds(10));
}

TEST(EventLoopTest, RunsPostsFromOtherThreadsAndTimers) {
  EventLoop loop;
  std::atomic<int> posted{0};
  std::thread runner([&] { loop.run(); });
  std::vector<std::thread> posters;
  for (int t = 0; t < 4; ++t) {
    posters.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        loop.post([&] { ++posted; });
      }
    });
  }
  for (auto& p : posters) {
    p.join();
  }
  loop.post([&] {
    loop.after(milliseconds(20), [&] { loop.stop(); });
  });
  runner.join();
  EXPECT_EQ(posted.load(), 4000);
}

TEST(ZmqTransportTest, RouterAndDealerExchangeEnvelopesAndDropGarbage) {
  zmq::context_t context(1);
  EventLoop loop;
  ZmqRouter router(context, loop, 1024 * 1024);
  auto endpoint = router.bind("tcp://127.0.0.1:*");
  ASSERT_TRUE(endpoint.ok()) << endpoint.error();

  std::string from;
  router.setHandler([&](const std::string& f, Envelope&& e) {
    from = f;
    EXPECT_EQ(e.agent_call().pong().master_id(), "hello");
    Envelope reply;
    reply.mutable_agent_event()->mutable_ping()->set_master_id("back");
    EXPECT_TRUE(router.send(f, reply));
    EXPECT_FALSE(router.send("nobody", reply));  // ROUTER_MANDATORY: unknown peers fail
  });
  ZmqDealer dealer(context, loop, "peer-1", 1024 * 1024);
  ASSERT_TRUE(dealer.connect(*endpoint).ok());
  dealer.setHandler([&](const std::string&, Envelope&& e) {
    EXPECT_EQ(e.agent_event().ping().master_id(), "back");
    loop.stop();
  });

  // Garbage from a raw DEALER: a non-envelope frame and a multi-frame message.
  zmq::socket_t raw(context, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(*endpoint);
  raw.send(zmq::buffer(std::string("\xff\xff\xff garbage")), zmq::send_flags::none);
  raw.send(zmq::buffer(std::string("a")), zmq::send_flags::sndmore);
  raw.send(zmq::buffer(std::string("b")), zmq::send_flags::none);

  Envelope hello;
  hello.mutable_agent_call()->mutable_pong()->set_master_id("hello");
  loop.post([&] {
    // Let the garbage arrive first, then say hello.
    loop.after(milliseconds(100), [&] { dealer.send("", hello); });
  });
  loop.after(seconds(10), [&] { loop.stop(); });
  loop.run();
  EXPECT_EQ(from, "peer-1");
  EXPECT_EQ(router.stats().malformed, 2u);
  EXPECT_EQ(router.stats().received, 1u);
}

TEST(ZmqTransportTest, AStandbyConnectionBecomesTheConnection) {
  zmq::context_t context(1);
  EventLoop loop;
  ZmqRouter first(context, loop, 1024 * 1024);
  ZmqRouter second(context, loop, 1024 * 1024);
  auto firstEndpoint = first.bind("tcp://127.0.0.1:*");
  auto secondEndpoint = second.bind("tcp://127.0.0.1:*");
  ASSERT_TRUE(firstEndpoint.ok() && secondEndpoint.ok());

  ZmqDealer dealer(context, loop, "peer-1", 1024 * 1024);
  ASSERT_TRUE(dealer.connect(*firstEndpoint).ok());
  // The current endpoint and duplicates are not standbys.
  dealer.keepStandbyConnections({*firstEndpoint, *secondEndpoint, *secondEndpoint});
  EXPECT_EQ(dealer.standbyConnections(), 1u);

  std::vector<std::string> heard;
  second.setHandler([&](const std::string& from, Envelope&& e) {
    heard.push_back(from + ":" + e.agent_call().pong().master_id());
    loop.stop();
  });
  first.setHandler([&](const std::string&, Envelope&&) { ADD_FAILURE() << "sent to the old one"; });
  // Moving to the standby takes its connection, and messages go there.
  ASSERT_TRUE(dealer.connect(*secondEndpoint).ok());
  EXPECT_EQ(dealer.standbyConnections(), 0u);
  EXPECT_EQ(dealer.endpoint(), *secondEndpoint);
  Envelope hello;
  hello.mutable_agent_call()->mutable_pong()->set_master_id("hello");
  loop.post([&] { EXPECT_TRUE(dealer.send("", hello)); });
  loop.after(seconds(10), [&] { loop.stop(); });
  loop.run();
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_EQ(heard[0], "peer-1:hello");

  // A list without an endpoint closes its standby connection.
  dealer.keepStandbyConnections({*secondEndpoint, *firstEndpoint});
  EXPECT_EQ(dealer.standbyConnections(), 1u);
  dealer.keepStandbyConnections({*secondEndpoint});
  EXPECT_EQ(dealer.standbyConnections(), 0u);
}

}  // namespace
}  // namespace agora
