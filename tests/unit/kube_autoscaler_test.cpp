#include "frameworks/k8s-like/controllers/autoscaler.hpp"

#include <gtest/gtest.h>

namespace agora::kube {
namespace {

PodSample pod(std::optional<double> usage, double request = 0.1, bool ready = true) {
  PodSample p;
  p.usage = usage;
  p.request = request;
  p.ready = ready;
  return p;
}

MetricTarget utilization(double percent) {
  MetricTarget t;
  t.utilization = percent;
  return t;
}

TEST(AutoscalerTest, DesiredIsCurrentTimesUsageOverTargetRoundedUp) {
  // Two pods at 100% of their request against a 50% target: four.
  auto p = proposeReplicas(2, {pod(0.1), pod(0.1)}, utilization(50), true, 0.1);
  ASSERT_TRUE(p.ok()) << p.error();
  EXPECT_EQ(p->replicas, 4);
  EXPECT_EQ(p->utilization.value_or(-1), 100);
  // Within the tolerance: unchanged.
  p = proposeReplicas(2, {pod(0.054), pod(0.05)}, utilization(50), true, 0.1);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->replicas, 2);
  // Below: fewer.
  p = proposeReplicas(4, {pod(0.01), pod(0.01), pod(0.01), pod(0.01)}, utilization(50), true, 0.1);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->replicas, 1);
}

TEST(AutoscalerTest, AnAverageValueTargetDividesTheTotal) {
  MetricTarget t;
  t.averageValue = 0.2;
  auto p = proposeReplicas(2, {pod(0.5), pod(0.5)}, t, true, 0.1);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->replicas, 5);
  EXPECT_FALSE(p->utilization.has_value());
  EXPECT_DOUBLE_EQ(p->averageValue, 0.5);
}

TEST(AutoscalerTest, PodsWithoutMetricsDampScalingAsKubernetesDoes) {
  // Scaling up: a pod without a measurement counts as idle.
  auto p = proposeReplicas(2, {pod(0.2), pod(std::nullopt)}, utilization(50), true, 0.1);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->replicas, 4);  // ratio 4 over one pod, then 2 over two: ceil(2 * 2)
  // Scaling down: it counts as at its target, so the pods do not shrink below what it needs.
  p = proposeReplicas(2, {pod(0.01), pod(std::nullopt)}, utilization(50), true, 0.1);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->replicas, 2);  // (0.01 + 0.1) / 0.2 = 0.55 of target: ceil(0.55 * 2) = 2
}

TEST(AutoscalerTest, UnreadyPodsCountAsIdleWhenScalingUpOnCpu) {
  auto p = proposeReplicas(2, {pod(0.1), pod(0.1, 0.1, false)}, utilization(50), true, 0.1);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->replicas, 2);  // 0.1 over two requests is exactly the target
  // For memory an unready pod's usage counts as it is.
  p = proposeReplicas(2, {pod(0.1), pod(0.1, 0.1, false)}, utilization(50), false, 0.1);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->replicas, 4);
}

TEST(AutoscalerTest, NoMeasurementOrNoRequestIsAnError) {
  EXPECT_FALSE(proposeReplicas(1, {pod(std::nullopt)}, utilization(50), true, 0.1).ok());
  EXPECT_FALSE(proposeReplicas(1, {pod(0.1, 0)}, utilization(50), true, 0.1).ok());
  EXPECT_FALSE(proposeReplicas(1, {}, utilization(50), true, 0.1).ok());
}

}  // namespace
}  // namespace agora::kube
