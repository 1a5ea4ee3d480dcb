#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "agora/agora.pb.h"
#include "common/histogram.hpp"
#include "common/transport.hpp"

namespace agora::master {

// The master's counters; /metrics prints them in Prometheus text format together with gauges
// read from the master's state.
struct Metrics {
  // Messages by (body case, call/event case), named only when printed.
  std::map<std::pair<int, int>, uint64_t> received;
  // Messages dropped, by reason: "malformed", "unknown_agent", "not_subscribed", ...
  std::map<std::string, uint64_t> dropped;
  uint64_t offersSent = 0;
  uint64_t offersAccepted = 0;
  uint64_t offersDeclined = 0;
  uint64_t offersRescinded = 0;
  uint64_t tasksLaunched = 0;
  uint64_t tasksInvalid = 0;   // TASK_ERROR from validation
  uint64_t tasksDropped = 0;   // launches against offers that were gone
  std::map<TaskState, uint64_t> tasksTerminal;
  uint64_t statusUpdatesForwarded = 0;
  uint64_t statusUpdatesDropped = 0;
  uint64_t acknowledgementsRelayed = 0;
  uint64_t agentsRegistered = 0;
  uint64_t agentsReregistered = 0;
  uint64_t agentsRemoved = 0;
  uint64_t frameworksSubscribed = 0;
  uint64_t frameworksRemoved = 0;
  uint64_t allocationRuns = 0;
  double allocationSeconds = 0;
  Histogram allocationCycle;  // seconds per allocation cycle
  uint64_t invalidCalls = 0;
  // Requests the ACLs refused, by action ("register_frameworks", ...).
  mutable std::map<std::string, uint64_t> unauthorized;
  // Set by whoever wires the master to a real transport.
  std::function<TransportStats()> transportStats;
};

}  // namespace agora::master
