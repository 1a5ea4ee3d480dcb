#include "cli/daemon.hpp"

#include <signal.h>
#include <unistd.h>

#include <iostream>

#include <glog/logging.h>

#include "common/fs.hpp"
#include "common/process.hpp"

namespace agora::cli {

void DaemonFlags::addTo(Flags& flags, const std::string& what) {
  flags.add(&infoFile, "info_file",
            "Write the " + what + "'s pid and addresses here (JSON) once it is serving.");
  flags.add(&logDir, "log_dir", "Write logs to this directory instead of stderr.");
  flags.add(&verbose, "verbose", "Verbose logging level (glog's VLOG).");
}

void TlsFlags::addTo(Flags& flags) {
  flags.add(&cert, "tls_cert",
            "Serve the HTTP API over TLS only, with this certificate (PEM; `agora up` makes\n"
            "one). Plain HTTP requests are answered 400.");
  flags.add(&key, "tls_key", "The key of --tls_cert (PEM).");
  flags.add(&clientCa, "tls_client_ca",
            "Accept client certificates this CA signed (PEM): the certificate's common name is\n"
            "the request's principal, with the scope --http_credentials grants it.");
  flags.add(&ca, "tls_ca",
            "Trust this CA (PEM) for the master's and agents' HTTPS (default: the credentials\n"
            "file's tls_ca, if any).");
}

Result<std::optional<TlsServerConfig>> TlsFlags::server() const {
  if (cert.empty() && key.empty() && clientCa.empty()) {
    return std::optional<TlsServerConfig>();
  }
  auto config = loadTlsServerConfig(cert, key, clientCa);
  if (!config) {
    return Error(config.error());
  }
  return std::optional<TlsServerConfig>(std::move(config).value());
}

Status TlsFlags::trust(const std::string& credentialsCa) const {
  std::string pem = credentialsCa;
  if (!ca.empty()) {
    auto text = readFile(ca);
    if (!text) {
      return Error("--tls_ca: " + text.error());
    }
    pem = *text;
  }
  if (!pem.empty()) {
    setDefaultHttpTls(TlsClientConfig{pem, "", ""});
  }
  return ok();
}

int prepareDaemonSignals(const std::vector<int>& extra) {
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &chld, nullptr);
  std::vector<int> signals = {SIGTERM, SIGINT};
  signals.insert(signals.end(), extra.begin(), extra.end());
  return blockSignalsToFd(signals);
}

int parseFlags(Flags& flags, int argc, const char* const* argv,
               std::vector<std::string>* positional) {
  auto parsed = flags.parse(argc, argv);
  if (flags.helpRequested()) {
    std::cout << flags.help();
    return 0;
  }
  if (!parsed) {
    std::cerr << argv[0] << ": " << parsed.error() << "\n";
    return 2;
  }
  if (positional != nullptr) {
    *positional = *parsed;
  } else if (!parsed->empty()) {
    std::cerr << argv[0] << ": unexpected argument '" << parsed->front() << "' (see --help)\n";
    return 2;
  }
  return -1;
}

void writeInfoFile(const std::string& path, const nlohmann::json& info) {
  if (path.empty()) {
    return;
  }
  Status s = writeFileAtomic(path, info.dump(2) + "\n");
  if (!s) {
    LOG(ERROR) << "Could not write the info file: " << s.error();
  }
}

std::string localHostname() {
  char buffer[256] = {0};
  if (::gethostname(buffer, sizeof(buffer) - 1) != 0) {
    return "localhost";
  }
  return buffer;
}

int endpointPort(const std::string& endpoint) {
  size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos) {
    return 0;
  }
  return std::atoi(endpoint.c_str() + colon + 1);
}

}  // namespace agora::cli
