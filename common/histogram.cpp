#include "common/histogram.hpp"

#include <algorithm>
#include <sstream>

namespace agora {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size(), 0) {}

std::vector<double> Histogram::latencyBounds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
          1, 2.5, 5, 10};
}

void Histogram::observe(double value) {
  auto at = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  if (at != bounds_.end()) ++counts_[static_cast<size_t>(at - bounds_.begin())];
  ++count_;
  sum_ += value;
}

void Histogram::write(std::ostream& out, const std::string& name,
                      const std::string& labels) const {
  std::string prefix = labels.empty() ? "" : labels + ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    std::ostringstream bound;
    bound << bounds_[i];
    out << name << "_bucket{" << prefix << "le=\"" << bound.str() << "\"} " << cumulative
        << "\n";
  }
  out << name << "_bucket{" << prefix << "le=\"+Inf\"} " << count_ << "\n";
  std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out << name << "_sum" << braces << " " << sum_ << "\n";
  out << name << "_count" << braces << " " << count_ << "\n";
}

}  // namespace agora
