// Bad input from the network: the master keeps serving, counts what it dropped, and changes
// nothing else.

#include <signal.h>

#include <random>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>
#include <zmq.hpp>

#include "agora/protocol.pb.h"
#include "common/http.hpp"
#include "tests/support/process_cluster.hpp"
#include "tests/support/test_scheduler.hpp"

namespace agora::testing {
namespace {

using nlohmann::json;

// Writes `bytes` to a fresh TCP connection and closes it.
void sendRaw(uint16_t port, const std::string& bytes) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  boost::system::error_code ec;
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
  if (ec) {
    return;
  }
  boost::asio::write(socket, boost::asio::buffer(bytes), ec);
  socket.close(ec);
}

std::string randomBytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) {
    c = static_cast<char>(rng());
  }
  return s;
}

uint64_t metric(const std::string& text, const std::string& name) {
  size_t at = text.find("\n" + name + " ");
  if (at == std::string::npos) {
    return 0;
  }
  return std::stoull(text.substr(at + name.size() + 2));
}

// Runs one task through the cluster: the master still does its job.
void expectMasterServes(const ProcessCluster& cluster) {
  EXPECT_EQ(httpGet(cluster.masterHttp(), "/health")->status, 200);
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster.masterHttp());
  scheduler.launch(TestScheduler::commandTask("after", "true"));
  driver.start();
  EXPECT_EQ(scheduler.waitForEnd("after").state(), TASK_FINISHED);
  driver.stop();
  driver.join();
}

TEST(RobustnessTest, GarbageBytesOnTheMastersPortsLeaveItServing) {
  ProcessClusterOptions options;
  options.agents = 1;
  ProcessCluster cluster(options);
  ASSERT_TRUE(cluster.start().ok());
  std::mt19937_64 rng(7);
  auto protocolPort = static_cast<uint16_t>(
      std::stoi(cluster.masterEndpoint().substr(cluster.masterEndpoint().rfind(':') + 1)));
  auto httpPort = splitHostPort(cluster.masterHttp())->second;

  for (int i = 0; i < 20; ++i) {
    sendRaw(protocolPort, randomBytes(rng, 1 + rng() % 100000));
    sendRaw(httpPort, randomBytes(rng, 1 + rng() % 10000));
  }
  // Things that look almost right: an HTTP request to the protocol port, a ZMTP greeting
  // followed by garbage, and an HTTP request with an absurd header.
  sendRaw(protocolPort, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  sendRaw(protocolPort, std::string("\xff\0\0\0\0\0\0\0\x01\x7f\x03\x00NULL", 15) +
                            randomBytes(rng, 5000));
  sendRaw(httpPort, "GET /state HTTP/1.1\r\nX: " + std::string(100000, 'a') + "\r\n\r\n");

  expectMasterServes(cluster);
  auto response = httpGet(cluster.masterHttp(), "/metrics");
  ASSERT_TRUE(response.ok());
  std::string metrics = response->body;
  EXPECT_GT(metric(metrics, "agora_master_connections_rejected_total"), 0u) << metrics;
  EXPECT_EQ(cluster.masterState()->at("agents").size(), 1u);
}

TEST(RobustnessTest, MalformedAndOversizedMessagesAreDroppedAndCounted) {
  ProcessClusterOptions options;
  options.agents = 1;
  options.masterFlags = {"--max_message_size=65536"};
  ProcessCluster cluster(options);
  ASSERT_TRUE(cluster.start().ok());

  zmq::context_t context(1);
  zmq::socket_t peer(context, zmq::socket_type::dealer);
  peer.set(zmq::sockopt::linger, 1000);
  peer.set(zmq::sockopt::routing_id, std::string("garbage-peer"));
  peer.connect(cluster.masterEndpoint());
  std::mt19937_64 rng(11);
  int sent = 0;
  for (int i = 0; i < 200; ++i) {
    peer.send(zmq::buffer(randomBytes(rng, 1 + rng() % 2000)), zmq::send_flags::none);
    ++sent;
  }
  // Multi-frame messages are not ours either.
  peer.send(zmq::buffer(std::string("x")), zmq::send_flags::sndmore);
  peer.send(zmq::buffer(std::string("y")), zmq::send_flags::none);

  // Well-formed envelopes with nonsense inside: unknown ids, bad resources, wrong kinds.
  auto sendEnvelope = [&](const Envelope& e) {
    peer.send(zmq::buffer(e.SerializeAsString()), zmq::send_flags::none);
  };
  Envelope e;
  e.mutable_agent_call()->set_agent_id("nobody");
  e.mutable_agent_call()->mutable_status_update()->mutable_status()->set_task_id("t");
  sendEnvelope(e);
  e.Clear();
  e.mutable_scheduler_call()->set_framework_id("nobody");
  e.mutable_scheduler_call()->mutable_accept()->add_offer_ids("x");
  sendEnvelope(e);
  e.Clear();
  auto* reg = e.mutable_agent_call()->mutable_register_()->mutable_agent_info();
  reg->set_hostname("evil");
  Resource* r = reg->add_resources();
  r->set_name("cpus");
  r->set_scalar(-1e300);
  sendEnvelope(e);
  e.Clear();
  e.mutable_executor_event()->mutable_heartbeat();
  sendEnvelope(e);

  // Mutations of a real status update (from an agent the master does not know): some decode,
  // some don't; none may hurt. The seed is fixed, so the mutations are the same every run.
  Envelope valid;
  valid.mutable_agent_call()->set_agent_id("nobody");
  auto* update = valid.mutable_agent_call()->mutable_status_update();
  update->set_framework_id("f");
  update->mutable_status()->set_task_id("t");
  update->mutable_status()->set_state(TASK_RUNNING);
  update->mutable_status()->set_uuid(std::string(16, 'u'));
  update->mutable_status()->set_message("fuzz");
  std::string bytes = valid.SerializeAsString();
  for (int i = 0; i < 500; ++i) {
    std::string m = bytes;
    m[rng() % m.size()] = static_cast<char>(rng());
    peer.send(zmq::buffer(m), zmq::send_flags::none);
  }

  // An oversized frame cuts the connection.
  zmq::socket_t big(context, zmq::socket_type::dealer);
  big.set(zmq::sockopt::linger, 1000);
  big.connect(cluster.masterEndpoint());
  big.send(zmq::buffer(std::string(200000, 'x')), zmq::send_flags::none);

  // Wait until the master has seen the garbage.
  ASSERT_TRUE(waitUntil(
      [&] {
        auto m = httpGet(cluster.masterHttp(), "/metrics");
        return m && m->body.find("reason=\"malformed\"} ") != std::string::npos &&
               m->body.find("reason=\"malformed\"} 0\n") == std::string::npos &&
               m->body.find("reason=\"unknown_agent\"}") != std::string::npos;
      },
      seconds(20)));
  expectMasterServes(cluster);
  // Whatever the fuzzed registrations did, the real agent is still there and serving.
  auto state = cluster.masterState();
  ASSERT_TRUE(state.ok());
  bool realAgent = false;
  for (const json& a : (*state)["agents"]) {
    realAgent |= a["hostname"] == "agent-0";
    EXPECT_NE(a["hostname"], "evil");
  }
  EXPECT_TRUE(realAgent);
  EXPECT_EQ(::kill(cluster.masterPid(), 0), 0);
}

TEST(RobustnessTest, ARegistrationFloodFromOneAddressIsThrottledWhileOthersAreServed) {
  ProcessClusterOptions options;
  options.agents = 1;
  options.masterFlags = {"--registration_rate_limit=20"};  // 1,000 at once
  ProcessCluster cluster(options);
  ASSERT_TRUE(cluster.start().ok());

  // 3,000 subscriptions as fast as one peer at 127.0.0.3 can send them.
  zmq::context_t context(1);
  zmq::socket_t flooder(context, zmq::socket_type::dealer);
  flooder.set(zmq::sockopt::linger, 5000);
  flooder.set(zmq::sockopt::routing_id, std::string("flooder"));
  flooder.connect("tcp://127.0.0.3:0;" + cluster.masterEndpoint().substr(6));
  Envelope e;
  FrameworkInfo* info = e.mutable_scheduler_call()->mutable_subscribe()->mutable_framework_info();
  info->set_name("flood");
  info->set_user("root");
  // Offers to the one subscription that gets through would sit unanswered: none, please.
  e.mutable_scheduler_call()->mutable_subscribe()->add_suppressed_roles("*");
  for (int i = 0; i < 3000; ++i) {
    flooder.send(zmq::buffer(e.SerializeAsString()), zmq::send_flags::none);
  }
  auto throttled = [&] {
    auto response = httpGet(cluster.masterHttp(), "/metrics", seconds(5));
    return response ? metric(response->body,
                             "agora_master_messages_dropped_total{reason=\"throttled\"}")
                    : 0;
  };
  ASSERT_TRUE(waitUntil([&] { return throttled() >= 1500; }, seconds(20))) << throttled();

  // A framework from 127.0.0.1 subscribes and runs a task meanwhile.
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster.masterHttp());
  scheduler.launch(TestScheduler::commandTask("served", "true"));
  driver.start();
  EXPECT_EQ(scheduler.waitForEnd("served").state(), TASK_FINISHED);
  driver.stop();
  driver.join();
  EXPECT_LE(throttled(), 3000u);
}

}  // namespace
}  // namespace agora::testing
