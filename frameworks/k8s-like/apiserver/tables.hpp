#pragma once

// Server-side Tables (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`): the columns
// `kubectl get` prints for each kind (pods: NAME READY STATUS RESTARTS AGE, and with -o wide
// IP NODE ...), computed here as kube-apiserver computes them.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "frameworks/k8s-like/apiserver/kinds.hpp"

namespace agora::kube {

// "Metadata" (the default), "Object" or "None": what each row carries besides its cells.
nlohmann::json toTable(const ResourceType& type, const std::vector<nlohmann::json>& objects,
                       const std::string& includeObject, double now);

// Kubernetes' human durations: "45s", "3m12s", "5h", "12d".
std::string humanDuration(double seconds);

// RFC 3339 in UTC with seconds ("2026-11-29T17:51:07Z"), and back (-1 when unparseable).
std::string rfc3339(double unixSeconds);
double parseRfc3339(const std::string& text);

// A pod's STATUS column: Running, Pending, ContainerCreating, CrashLoopBackOff, Completed,
// Terminating, ... as kubectl users read it.
std::string podDisplayStatus(const nlohmann::json& pod);

}  // namespace agora::kube
