#pragma once

// The API server's TLS material, made on first start as minikube does: a CA of the cluster's
// own and a serving certificate it signs, for the names and addresses the server is reached at.
// kubectl trusts the CA through the kubeconfig `agora up` writes. Kept in the data directory and
// reused while it is valid for the server's names.

#include <string>
#include <vector>

#include "common/result.hpp"

namespace agora::kube {

struct Certificates {
  std::string caCert;      // PEM
  std::string caKey;       // PEM
  std::string serverCert;  // PEM, signed by the CA
  std::string serverKey;   // PEM
};

// `names`: what clients connect to, IP addresses ("127.0.0.1") and DNS names ("localhost").
Result<Certificates> makeCertificates(const std::vector<std::string>& names,
                                      int validDays = 365);

// Loads the certificates from `dir` (ca.crt, ca.key, server.crt, server.key), or makes and
// writes them (keys 0600) when they are missing or the serving one lacks one of `names`.
Result<Certificates> loadOrMakeCertificates(const std::string& dir,
                                            const std::vector<std::string>& names);

// Whether `serverCert` is signed by `caCert` and valid for `name` now (tests, and the check
// above).
Status verifyCertificate(const std::string& caCert, const std::string& serverCert,
                         const std::string& name);

}  // namespace agora::kube
