#pragma once

// The `agora` verbs. Each takes the argv that follows the verb name (argv[0] is "agora VERB")
// and returns the process exit code.

#include <string>
#include <vector>

#include "common/result.hpp"

namespace agora::cli {

int masterCommand(int argc, const char* const* argv);
int agentCommand(int argc, const char* const* argv);
int executorCommand(int argc, const char* const* argv);
int upCommand(int argc, const char* const* argv);
int credentialsCommand(int argc, const char* const* argv);
// CURVE credentials for a cluster in `dir`: master.json, and PRINCIPAL.json for each client.
Status writeClusterCredentials(const std::string& dir, const std::vector<std::string>& principals);
// TLS for the HTTP APIs, into the same directory: a CA (http-ca.crt, .key), a serving
// certificate for `names` (http.crt, .key), the CA in each of `clients`' credentials files,
// and client certificates (NAME.crt, .key) for `clientCertificates`.
Status writeClusterTls(const std::string& dir, const std::vector<std::string>& names,
                       const std::vector<std::string>& clients,
                       const std::vector<std::string>& clientCertificates);
int statusCommand(int argc, const char* const* argv);
int stopCommand(int argc, const char* const* argv);
int deleteCommand(int argc, const char* const* argv);
int profileCommand(int argc, const char* const* argv);
int agentsCommand(int argc, const char* const* argv);
int frameworksCommand(int argc, const char* const* argv);
int tasksCommand(int argc, const char* const* argv);
int rolesCommand(int argc, const char* const* argv);
int weightsCommand(int argc, const char* const* argv);
int quotaCommand(int argc, const char* const* argv);
int reserveCommand(int argc, const char* const* argv);
int maintenanceCommand(int argc, const char* const* argv);
int unreserveCommand(int argc, const char* const* argv);
int runCommand(int argc, const char* const* argv);
int batchCommand(int argc, const char* const* argv);
// Ends the drivers of the profile's batch jobs without ending the jobs (agora stop): each can
// be resumed once the cluster runs again.
void detachBatchDrivers(const std::string& profile);
int superviseCommand(int argc, const char* const* argv);
int imageCommand(int argc, const char* const* argv);
int kubeCommand(int argc, const char* const* argv);
int kubeProxyCommand(int argc, const char* const* argv);
int sshCommand(int argc, const char* const* argv);
int dashboardCommand(int argc, const char* const* argv);
// Where `agora image` and `agora up`'s agents keep images: $AGORA_HOME/images.
std::string defaultImageStore();

}  // namespace agora::cli
