// agora master: a standalone master (ZooKeeper election comes with HA mode).

#include <sys/signalfd.h>
#include <unistd.h>

#include <iostream>

#include <glog/logging.h>
#include <zmq.hpp>

#include "cli/commands.hpp"
#include "cli/daemon.hpp"
#include "common/event_loop.hpp"
#include "common/logging.hpp"
#include "common/zmq_transport.hpp"
#include "master/allocator/fair_allocator.hpp"
#include "master/http.hpp"
#include "master/master.hpp"

namespace agora::cli {

int masterCommand(int argc, const char* const* argv) {
  std::string ip = "127.0.0.1";
  int port = 5050;
  int protocolPort = -1;
  std::string hostname;
  DaemonFlags daemonFlags;
  int maxMessageSize = static_cast<int>(kDefaultMaxMessageSize);
  master::MasterOptions options;

  Flags flags("agora master [flags]",
              "Runs a master: agents register with it, frameworks subscribe to it, and it offers\n"
              "the agents' resources to the frameworks. Operators and the CLI use its HTTP API\n"
              "(/state, /metrics, /health) at --ip:--port.");
  flags.add(&ip, "ip", "IP address to listen on (HTTP and protocol).");
  flags.add(&port, "port", "HTTP port: the address agents, frameworks and the CLI are given.\n"
                           "0 picks a free port.");
  flags.add(&protocolPort, "protocol_port",
            "Port of the ZeroMQ protocol endpoint agents and schedulers connect to (they learn\n"
            "it from GET /master/info). -1: 5049 when --port is 5050, otherwise any free port.");
  flags.add(&hostname, "hostname", "Hostname to advertise (default: this machine's).");
  flags.add(&options.allocationInterval, "allocation_interval",
            "How often to run a full allocation (allocations also follow events).");
  flags.add(&options.agentPingTimeout, "agent_ping_timeout",
            "How often the master pings each agent; an agent that misses\n"
            "--max_agent_ping_timeouts pings in a row is removed.");
  flags.add(&options.maxAgentPingTimeouts, "max_agent_ping_timeouts",
            "Missed pings before an agent is removed.");
  flags.add(&options.frameworkHeartbeatInterval, "framework_heartbeat_interval",
            "How often schedulers and the master exchange heartbeats.");
  flags.add(&options.maxFrameworkHeartbeatMisses, "max_framework_heartbeat_misses",
            "Silent heartbeat intervals before a scheduler counts as disconnected.");
  flags.add(&options.offerTimeout, "offer_timeout",
            "Rescind offers not answered within this time (0: never).");
  flags.add(&maxMessageSize, "max_message_size",
            "Largest message (bytes) a peer may send; larger ones cut the connection.");
  daemonFlags.addTo(flags, "master");
  int rc = parseFlags(flags, argc, argv);
  if (rc >= 0) {
    return rc;
  }
  if (port < 0 || port > 65535 || protocolPort < -1 || protocolPort > 65535) {
    std::cerr << "agora master: ports must be between 0 and 65535\n";
    return 2;
  }
  if (maxMessageSize < 1024) {
    std::cerr << "agora master: --max_message_size must be at least 1024 bytes\n";
    return 2;
  }
  if (protocolPort == -1) {
    protocolPort = port == 5050 ? 5049 : 0;
  }

  initLogging(argv[0], daemonFlags.logDir, daemonFlags.verbose);
  int signals = prepareDaemonSignals();

  zmq::context_t context(1);
  EventLoop loop;
  ZmqRouter router(context, loop, static_cast<size_t>(maxMessageSize));
  auto endpoint = router.bind("tcp://" + ip + ":" +
                              (protocolPort == 0 ? std::string("*") : std::to_string(protocolPort)));
  if (!endpoint) {
    std::cerr << "agora master: " << endpoint.error() << "\n";
    return 1;
  }
  HttpServer http;
  auto httpPort = http.listen(ip, static_cast<uint16_t>(port));
  if (!httpPort) {
    std::cerr << "agora master: " << httpPort.error() << "\n";
    return 1;
  }

  options.info.set_hostname(hostname.empty() ? localHostname() : hostname);
  options.info.set_ip(ip);
  options.info.set_http_port(*httpPort);
  options.info.set_endpoint(*endpoint);
  options.info.set_version(AGORA_VERSION);
  master::Master master(options, loop, router,
                        std::make_unique<master::FairAllocator>([&loop] { return loop.now(); }));
  master.metrics().transportStats = [&router] { return router.stats(); };
  router.setHandler([&master](const std::string& from, Envelope&& envelope) {
    master.receive(from, std::move(envelope));
  });
  master::addMasterRoutes(http, loop, master);
  http.serve();
  master.start();

  loop.watchFd(signals, [&] {
    signalfd_siginfo info;
    while (::read(signals, &info, sizeof(info)) > 0) {
      LOG(INFO) << "Received signal " << info.ssi_signo << "; master exiting";
    }
    loop.stop();
  });

  LOG(INFO) << "Master " << master.info().id() << " HTTP API at http://" << ip << ":"
            << *httpPort;
  writeInfoFile(daemonFlags.infoFile, {{"pid", ::getpid()},
                           {"id", master.info().id()},
                           {"http", ip + ":" + std::to_string(*httpPort)},
                           {"endpoint", *endpoint}});
  loop.run();
  http.stop();
  return 0;
}

}  // namespace agora::cli
