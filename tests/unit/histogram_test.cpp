#include "common/histogram.hpp"

#include <sstream>

#include <gtest/gtest.h>

namespace agora {
namespace {

TEST(HistogramTest, BucketsAreCumulativeWithSumAndCount) {
  Histogram h({0.1, 1});
  h.observe(0.05);
  h.observe(0.1);  // on a bound: counted under it
  h.observe(0.5);
  h.observe(7);
  std::ostringstream out;
  h.write(out, "x_seconds", "verb=\"GET\"");
  EXPECT_EQ(out.str(),
            "x_seconds_bucket{verb=\"GET\",le=\"0.1\"} 2\n"
            "x_seconds_bucket{verb=\"GET\",le=\"1\"} 3\n"
            "x_seconds_bucket{verb=\"GET\",le=\"+Inf\"} 4\n"
            "x_seconds_sum{verb=\"GET\"} 7.65\n"
            "x_seconds_count{verb=\"GET\"} 4\n");
  std::ostringstream bare;
  Histogram().write(bare, "y");
  EXPECT_NE(bare.str().find("y_bucket{le=\"0.0001\"} 0\n"), std::string::npos) << bare.str();
  EXPECT_NE(bare.str().find("y_count 0\n"), std::string::npos) << bare.str();
}

}  // namespace
}  // namespace agora
