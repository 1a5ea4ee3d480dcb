#pragma once

// Small socket helpers: blocking connections for the threads and helper processes that relay
// a connection (remote commands, port-forwards), and loopback helpers for local clusters
// (`agora up`), tests and benchmarks.

#include <string>
#include <string_view>

#include "common/result.hpp"
#include "common/time.hpp"

namespace agora {

// A blocking TCP connection to "host:port" ("[::1]:80" too), close-on-exec; `timeout` bounds
// the connect and each later send and receive (zero: none).
Result<int> connectTcp(const std::string& address, Duration timeout = Duration::zero());

// Writes all of `data` to a blocking descriptor (a socket without SIGPIPE); false when the
// other side is gone.
bool writeAll(int fd, std::string_view data);

// Copies bytes both ways between two connected sockets until both directions have ended (each
// side's end of stream is passed on as a half-close) or either fails; blocks the calling
// thread. Closes neither.
void relayDescriptors(int a, int b);

// A TCP port on 127.0.0.1 that nobody listens on now (bind to 0, read it, close), or 0 when
// the kernel gives none. Another process may take it before the caller binds it.
int freeLoopbackPort();

// Whether a ZooKeeper server on 127.0.0.1:`port` serves: it answers the four-letter word
// "ruok" with "imok" (the server must whitelist ruok).
bool zooKeeperServes(int port);

}  // namespace agora
