// agora credentials DIR: CURVE keys for a cluster, as agora up makes them for its profiles.

#include <sys/stat.h>

#include <iostream>

#include "cli/commands.hpp"
#include "cli/daemon.hpp"
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

int credentialsCommand(int argc, const char* const* argv) {
  std::string principals = "agent,kube,operator";
  Flags flags("agora credentials DIR [--principals=agent,kube,operator]",
              "Writes CURVE credentials for a cluster into DIR (mode 0700, files 0600):\n"
              "master.json (the masters' key pair and the clients they admit) and, for each\n"
              "principal, PRINCIPAL.json (its key pair and the master's public key). Give\n"
              "master.json to every master (--credentials), agent.json to agents, and the\n"
              "others to frameworks (--credentials, or AGORA_CREDENTIALS).");
  flags.add(&principals, "principals", "The clients' principals, comma-separated.");
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
  std::cout << "Wrote " << dir << "/master.json";
  for (const std::string& name : names) {
    std::cout << ", " << name << ".json";
  }
  std::cout << "\n";
  return 0;
}

}  // namespace agora::cli
