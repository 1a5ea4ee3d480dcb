#pragma once

// Kinds served in more than one version, stored in one: a request in the other version is
// converted to the stored one on the way in, and its answers back on the way out.
// autoscaling/v1 HorizontalPodAutoscalers (what `kubectl autoscale` sends) are stored as v2.

#include <nlohmann/json.hpp>

namespace agora::kube {

// v1 to v2. `stored` is the object as stored now (null for a new one): its metrics other than
// CPU utilisation and its behavior are kept, since v1 cannot say them.
nlohmann::json hpaV1ToV2(const nlohmann::json& v1, const nlohmann::json& stored);
// v2 to v1: the CPU utilisation target and its current value; other metrics are not shown.
nlohmann::json hpaV2ToV1(const nlohmann::json& v2);

}  // namespace agora::kube
