#pragma once

// Small loopback helpers for local clusters (`agora up`), tests and benchmarks.

namespace agora {

// A TCP port on 127.0.0.1 that nobody listens on now (bind to 0, read it, close), or 0 when
// the kernel gives none. Another process may take it before the caller binds it.
int freeLoopbackPort();

// Whether a ZooKeeper server on 127.0.0.1:`port` serves: it answers the four-letter word
// "ruok" with "imok" (the server must whitelist ruok).
bool zooKeeperServes(int port);

}  // namespace agora
