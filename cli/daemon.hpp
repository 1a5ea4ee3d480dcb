#pragma once

// What the daemon verbs (master, agent) share: signals, the info file, flag parsing.

#include <string>

#include <nlohmann/json.hpp>

#include "common/flags.hpp"
#include "common/result.hpp"
#include "common/tls.hpp"

namespace agora::cli {

// The flags every daemon takes: where to write its info file, and logging.
struct DaemonFlags {
  std::string infoFile;
  std::string logDir;
  int verbose = 0;

  void addTo(Flags& flags, const std::string& what);
};

// HTTPS for a daemon's HTTP API, and whom it trusts as a client of other daemons' HTTPS.
struct TlsFlags {
  std::string cert;
  std::string key;
  std::string clientCa;
  std::string ca;

  void addTo(Flags& flags);
  // The server's side: nullopt without --tls_cert; an error for half a pair or a bad file.
  Result<std::optional<TlsServerConfig>> server() const;
  // Trusts --tls_ca, else `credentialsCa` (a client's credentials file's tls_ca), for this
  // process's connections to the cluster's HTTP APIs (setDefaultHttpTls). An error for an
  // unreadable file.
  Status trust(const std::string& credentialsCa) const;
};

// Blocks SIGTERM, SIGINT and SIGCHLD in this thread and every thread started after it (call
// first thing), ignores SIGPIPE, and returns a signalfd that reads SIGTERM and SIGINT (and
// `extra`).
int prepareDaemonSignals(const std::vector<int>& extra = {});

// Parses flags; on --help prints the help and returns 0, on a bad flag prints the error and
// returns 2; returns -1 when the command should go on.
int parseFlags(Flags& flags, int argc, const char* const* argv,
               std::vector<std::string>* positional = nullptr);

// Writes what others need to find this daemon (pid, addresses), atomically.
void writeInfoFile(const std::string& path, const nlohmann::json& info);

std::string localHostname();

// "tcp://127.0.0.1:40123" -> 40123 (0 when there is no port).
int endpointPort(const std::string& endpoint);

}  // namespace agora::cli
