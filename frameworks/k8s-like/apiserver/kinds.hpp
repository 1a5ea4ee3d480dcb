#pragma once

// The resource types the API server serves, and what discovery says of them: the documents
// kubectl reads to map `kubectl get deploy` to /apis/apps/v1/namespaces/NS/deployments
// (/api, /apis, the per-group-version resource lists) and the OpenAPI v3 documents it reads to
// learn that the server validates fields itself (`fieldValidation`).

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace agora::kube {

struct ResourceType {
  std::string group;  // "" for the core group
  std::string version;
  std::string kind;
  std::string plural;
  std::string singular;
  bool namespaced = true;
  std::vector<std::string> shortNames;
  std::vector<std::string> categories;  // "all": what `kubectl get all` lists
  bool hasStatus = false;               // a /status subresource (status kept apart from spec)
  bool hasScale = false;                // a /scale subresource
  bool hasGeneration = false;           // metadata.generation counts changes to the spec
  bool stored = true;                   // false: computed when read (ApiServer::provide)
  bool storageVersion = true;           // false: stored as another version of the kind

  std::string groupVersion() const { return group.empty() ? version : group + "/" + version; }
  // "deployments.apps", "pods": how errors name the resource.
  std::string qualified() const { return group.empty() ? plural : plural + "." + group; }
  // The store key's prefix: every object of this type, or those in one namespace.
  std::string keyPrefix(const std::string& ns = "") const;
  std::string key(const std::string& ns, const std::string& name) const;
};

const std::vector<ResourceType>& resourceTypes();
// By group, version and plural (or singular) name; null when not served.
const ResourceType* findResource(const std::string& group, const std::string& version,
                                 const std::string& plural);
// By apiVersion ("apps/v1") and kind; null when not served.
const ResourceType* findKind(const std::string& apiVersion, const std::string& kind);

// "/apis/apps/v1/namespaces/x" -> {"apis", "apps", "v1", "namespaces", "x"}.
std::vector<std::string> pathSegments(const std::string& path);

// The version this server claims (`kubectl version`).
nlohmann::json versionInfo();

// /api, /apis, /apis/GROUP, and /api/v1 or /apis/GROUP/VERSION (null when not served).
nlohmann::json coreVersions(const std::string& serverAddress);
nlohmann::json groupList();
nlohmann::json group(const std::string& name);
nlohmann::json resourceList(const std::string& group, const std::string& version);

// Aggregated discovery (what kubectl asks /api and /apis for first): every group's resources
// in one document, APIGroupDiscoveryList at `version` ("v2" or "v2beta1"); `core` for /api.
nlohmann::json aggregatedDiscovery(bool core, const std::string& version);

// /openapi/v3: the per-group-version documents' paths; and one document ("api/v1",
// "apis/apps/v1"), or null.
nlohmann::json openapiRoot();
nlohmann::json openapiDocument(const std::string& path);

}  // namespace agora::kube
