// agora credentials DIR: CURVE keys for a cluster, as agora up makes them for its profiles.

#include <sys/stat.h>

#include <algorithm>
#include <iostream>
#include <tuple>

#include "cli/commands.hpp"
#include "cli/daemon.hpp"
#include "common/certs.hpp"
#include "common/curve.hpp"
#include "common/flags.hpp"
#include "common/fs.hpp"
#include "common/ids.hpp"

namespace agora::cli {

Status writeClusterCredentials(const std::string& dir, const std::vector<std::string>& principals) {
  if (Status made = makeDirectories(dir); !made) {
    return made;
  }
  ::chmod(dir.c_str(), 0700);
  Credentials master;
  master.keys = generateCurveKeyPair();
  for (const std::string& principal : principals) {
    Credentials client;
    client.principal = principal;
    client.keys = generateCurveKeyPair();
    client.serverKey = master.keys.publicKey;
    master.clients[client.keys.publicKey] = principal;
    if (Status saved = saveCredentials(dir + "/" + principal + ".json", client); !saved) {
      return saved;
    }
  }
  return saveCredentials(dir + "/master.json", master);
}

Status writeClusterTls(const std::string& dir, const std::vector<std::string>& names,
                       const std::vector<std::string>& clients,
                       const std::vector<std::string>& clientCertificates) {
  std::vector<std::string> unique;
  for (const std::string& name : names) {
    if (std::find(unique.begin(), unique.end(), name) == unique.end()) unique.push_back(name);
  }
  auto made = makeCertificates(unique, 365, "agora");
  if (!made) {
    return Error(made.error());
  }
  for (const auto& [file, content, mode] :
       {std::tuple<const char*, const std::string&, mode_t>{"http-ca.crt", made->caCert, 0644},
        {"http-ca.key", made->caKey, 0600},
        {"http.crt", made->serverCert, 0644},
        {"http.key", made->serverKey, 0600}}) {
    if (Status saved = writeFileAtomic(dir + "/" + file, content, mode); !saved) {
      return saved;
    }
  }
  for (const std::string& client : clients) {
    std::string path = dir + "/" + client + ".json";
    auto credentials = loadCredentials(path, CredentialsFor::kClient);
    if (!credentials) {
      return Error(credentials.error());
    }
    credentials->tlsCa = made->caCert;
    if (Status saved = saveCredentials(path, *credentials); !saved) {
      return saved;
    }
  }
  for (const std::string& holder : clientCertificates) {
    auto issued = issueCertificate(made->caCert, made->caKey, holder, CertificateUse::kClient);
    if (!issued) {
      return Error(issued.error());
    }
    if (Status saved = writeFileAtomic(dir + "/" + holder + ".crt", issued->first, 0644);
        !saved) {
      return saved;
    }
    if (Status saved = writeFileAtomic(dir + "/" + holder + ".key", issued->second, 0600);
        !saved) {
      return saved;
    }
  }
  return ok();
}

int credentialsCommand(int argc, const char* const* argv) {
  std::string principals = "agent,kube,operator";
  Flags flags("agora credentials DIR [--principals=agent,kube,operator]",
              "Writes CURVE credentials for a cluster into DIR (mode 0700, files 0600):\n"
              "master.json (the masters' key pair and the clients they admit) and, for each\n"
              "principal, PRINCIPAL.json (its key pair and the master's public key). Give\n"
              "master.json to every master (--credentials), agent.json to agents, and the\n"
              "others to frameworks (--credentials, or AGORA_CREDENTIALS).");
  flags.add(&principals, "principals", "The clients' principals, comma-separated.");
  std::string tlsNames;
  flags.add(&tlsNames, "tls_names",
            "Also TLS for the HTTP APIs: a CA (http-ca.crt, http-ca.key) and a serving\n"
            "certificate (http.crt, http.key: --tls_cert, --tls_key) for these addresses and\n"
            "DNS names, comma-separated; each client's file then trusts the CA.");
  std::string clientCertificates;
  flags.add(&clientCertificates, "client_certs",
            "With --tls_names: client certificates (NAME.crt, NAME.key) for these principals,\n"
            "comma-separated, for servers given --tls_client_ca=http-ca.crt.");
  std::vector<std::string> positional;
  int rc = parseFlags(flags, argc, argv, &positional);
  if (rc >= 0) {
    return rc;
  }
  if (positional.size() != 1) {
    std::cerr << "agora credentials: give one directory (see --help)\n";
    return 2;
  }
  std::vector<std::string> names = splitList(principals);
  for (const std::string& name : names) {
    if (Status valid = validateId(name, "principal"); !valid || name == "master") {
      std::cerr << "agora credentials: --principals: "
                << (valid ? "'master' names the masters' own file" : valid.error()) << "\n";
      return 2;
    }
  }
  if (names.empty()) {
    std::cerr << "agora credentials: --principals names no one\n";
    return 2;
  }
  const std::string& dir = positional[0];
  if (Status written = writeClusterCredentials(dir, names); !written) {
    std::cerr << "agora credentials: " << written.error() << "\n";
    return 1;
  }
  std::vector<std::string> certified = splitList(clientCertificates);
  for (const std::string& name : certified) {
    if (Status valid = validateId(name, "principal"); !valid) {
      std::cerr << "agora credentials: --client_certs: " << valid.error() << "\n";
      return 2;
    }
  }
  if (!tlsNames.empty()) {
    if (Status written = writeClusterTls(dir, splitList(tlsNames), names, certified); !written) {
      std::cerr << "agora credentials: " << written.error() << "\n";
      return 1;
    }
  } else if (!certified.empty()) {
    std::cerr << "agora credentials: --client_certs needs --tls_names (the CA signs them)\n";
    return 2;
  }
  std::cout << "Wrote " << dir << "/master.json";
  for (const std::string& name : names) {
    std::cout << ", " << name << ".json";
  }
  if (!tlsNames.empty()) {
    std::cout << ", http-ca.crt, http.crt";
    for (const std::string& name : certified) {
      std::cout << ", " << name << ".crt";
    }
  }
  std::cout << "\n";
  return 0;
}

}  // namespace agora::cli
