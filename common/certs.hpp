#pragma once

// TLS material of a cluster's own, made as minikube does: a CA and the certificates it signs.
// The kube API server serves with one (its data directory's pki/); `agora up` makes another
// for the master's and agents' HTTP APIs, and client certificates that name a principal.
// Clients trust the CA alone (the kubeconfig, a profile, a client's credentials file).

#include <string>
#include <vector>

#include "common/result.hpp"

namespace agora {

struct Certificates {
  std::string caCert;      // PEM
  std::string caKey;       // PEM
  std::string serverCert;  // PEM, signed by the CA
  std::string serverKey;   // PEM
};

// A fresh CA and a serving certificate it signs for `names`: what clients connect to, IP
// addresses ("127.0.0.1") and DNS names ("localhost").
Result<Certificates> makeCertificates(const std::vector<std::string>& names, int validDays = 365,
                                      const std::string& serverName = "agora-kube-apiserver");

// A certificate signed by the CA in `caCert`/`caKey`, and its new key (PEM both). A client
// certificate names its holder by `commonName` (the principal a server that trusts the CA
// sees); a serving one is valid for `names`.
enum class CertificateUse { kServer, kClient };
Result<std::pair<std::string, std::string>> issueCertificate(const std::string& caCert,
                                                             const std::string& caKey,
                                                             const std::string& commonName,
                                                             CertificateUse use,
                                                             const std::vector<std::string>& names = {},
                                                             int validDays = 365);

// Loads the certificates from `dir` (ca.crt, ca.key, server.crt, server.key), or makes and
// writes them (keys 0600 from creation) when they are missing or the serving one lacks one of
// `names`.
Result<Certificates> loadOrMakeCertificates(const std::string& dir,
                                            const std::vector<std::string>& names);

// Whether `serverCert` is signed by `caCert` and valid for `name` now (tests, and the check
// above).
Status verifyCertificate(const std::string& caCert, const std::string& serverCert,
                         const std::string& name);

}  // namespace agora
