// The dashboard's data the master keeps for it: the cluster's use over time.

#include <nlohmann/json.hpp>

#include "master/master.hpp"

namespace agora::master {

namespace {

constexpr size_t kHistorySamples = 720;  // an hour, a sample every 5 seconds

nlohmann::json pair(const Resources& used, const Resources& total, const char* name) {
  return nlohmann::json::array({used.scalar(name), total.scalar(name)});
}

}  // namespace

void Master::sampleUsage() {
  UsageSample sample;
  sample.time = loop_.wallTime();
  for (const auto& [id, agent] : agents_) {
    sample.total += agent.total;
    sample.used += agent.used;
    for (const auto& [framework, tasks] : agent.tasks) sample.tasks += tasks.size();
  }
  sample.agents = agents_.size();
  history_.push_back(std::move(sample));
  while (history_.size() > kHistorySamples) history_.pop_front();
}

nlohmann::json Master::history() const {
  nlohmann::json samples = nlohmann::json::array();
  for (const UsageSample& s : history_) {
    samples.push_back({{"time", s.time},
                       {"cpus", pair(s.used, s.total, "cpus")},
                       {"mem", pair(s.used, s.total, "mem")},
                       {"gpus", pair(s.used, s.total, "gpus")},
                       {"disk", pair(s.used, s.total, "disk")},
                       {"tasks", s.tasks},
                       {"agents", s.agents}});
  }
  return {{"interval_seconds", 5}, {"samples", samples}};
}

}  // namespace agora::master
