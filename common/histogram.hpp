#pragma once

// A Prometheus histogram: counts of observations under fixed upper bounds, their sum and
// count, written in the text exposition format (NAME_bucket{le="..."}, NAME_sum, NAME_count).
// Not thread-safe: its owner serialises observe() and write().

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace agora {

class Histogram {
 public:
  // Upper bounds, ascending; +Inf is added.
  explicit Histogram(std::vector<double> bounds = latencyBounds());

  void observe(double value);
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

  // The series, with `labels` ("verb=\"get\"", or "") on each; HELP and TYPE are the
  // caller's, once per metric name.
  void write(std::ostream& out, const std::string& name, const std::string& labels = "") const;

  // Seconds, from 100 µs to 10 s: request and cycle latencies.
  static std::vector<double> latencyBounds();

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bound, not cumulative
  uint64_t count_ = 0;
  double sum_ = 0;
};

}  // namespace agora
