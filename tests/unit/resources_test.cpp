#include <gtest/gtest.h>

#include "common/resources.hpp"

namespace agora {
namespace {

Resources parse(const std::string& text) {
  auto r = Resources::parse(text);
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? *r : Resources();
}

TEST(ResourcesTest, ParsesScalarsRangesAndRoles) {
  Resources r = parse("cpus:4;mem:1024;ports:[31000-32000,33000-33010];cpus(eng):2");
  EXPECT_DOUBLE_EQ(r.scalar("cpus"), 6);
  EXPECT_DOUBLE_EQ(r.scalar("mem"), 1024);
  EXPECT_EQ(r.rangeCount("ports"), 1001u + 11u);
  EXPECT_DOUBLE_EQ(r.reservedFor("eng").scalar("cpus"), 2);
  EXPECT_DOUBLE_EQ(r.unreserved().scalar("cpus"), 4);
  EXPECT_EQ(r.toString(), "cpus(eng):2;cpus:4;mem:1024;ports:[31000-32000,33000-33010]");
}

TEST(ResourcesTest, RejectsBadText) {
  for (const char* bad : {"cpus", "cpus:x", "cpus:-1", "cpus:nan", "ports:5", "ports:[5-3]",
                          "ports:[a-b]", "cpus():1", "cp us:1", ":4", "mem:1e999"}) {
    EXPECT_FALSE(Resources::parse(bad).ok()) << bad;
  }
  EXPECT_TRUE(Resources::parse("").ok());
  EXPECT_TRUE(Resources::parse(" cpus : 1 ; ").ok());
}

TEST(ResourcesTest, AddsAndSubtractsScalarsWithMilliPrecision) {
  Resources r = parse("cpus:1");
  for (int i = 0; i < 10; ++i) {
    r -= Resources::scalar("cpus", 0.1);
  }
  EXPECT_TRUE(r.empty()) << r;
  Resources sum;
  for (int i = 0; i < 3; ++i) {
    sum += Resources::scalar("cpus", 0.1);
  }
  EXPECT_DOUBLE_EQ(sum.scalar("cpus"), 0.3);
  EXPECT_TRUE(parse("cpus:0.3").contains(sum));
}

TEST(ResourcesTest, RangesMergeSplitAndContain) {
  Resources r = parse("ports:[100-200]");
  r += parse("ports:[201-300]");
  EXPECT_EQ(r.toString(), "ports:[100-300]");
  r -= parse("ports:[150-160]");
  EXPECT_EQ(r.toString(), "ports:[100-149,161-300]");
  EXPECT_TRUE(r.contains(parse("ports:[100-149]")));
  EXPECT_TRUE(r.contains(parse("ports:[170-180,200-210]")));
  EXPECT_FALSE(r.contains(parse("ports:[149-161]")));
  EXPECT_FALSE(r.contains(parse("ports:[301-301]")));
  r -= parse("ports:[100-149,161-300]");
  EXPECT_TRUE(r.empty());
}

TEST(ResourcesTest, ContainsRespectsReservations) {
  Resources r = parse("cpus:2;cpus(eng):2;mem:100");
  EXPECT_TRUE(r.contains(parse("cpus:2")));
  EXPECT_FALSE(r.contains(parse("cpus:3")));
  EXPECT_TRUE(r.contains(parse("cpus(eng):2")));
  EXPECT_FALSE(r.contains(parse("cpus(ops):1")));
  EXPECT_DOUBLE_EQ(r.allocatableTo("eng").scalar("cpus"), 4);
  EXPECT_DOUBLE_EQ(r.allocatableTo("ops").scalar("cpus"), 2);
  EXPECT_TRUE(parse("cpus:2;mem:100") + parse("cpus(eng):2") == r);
}

TEST(ResourcesTest, SubtractingWhatIsNotThereChangesNothingElse) {
  Resources r = parse("cpus:1;mem:10");
  r -= parse("gpus:1;cpus(eng):1");
  EXPECT_EQ(r.toString(), "cpus:1;mem:10");
  r -= parse("mem:20");
  EXPECT_EQ(r.toString(), "cpus:1");
}

TEST(ResourcesTest, ValidatesWhatPeersSend) {
  Resources::Proto items;
  Resource* r = items.Add();
  r->set_name("cpus");
  r->set_scalar(-1);
  EXPECT_FALSE(Resources::validate(items).ok());
  r->set_scalar(std::numeric_limits<double>::infinity());
  EXPECT_FALSE(Resources::validate(items).ok());
  r->set_scalar(1);
  EXPECT_TRUE(Resources::validate(items).ok());
  r->set_name("");
  EXPECT_FALSE(Resources::validate(items).ok());
  r->set_name("ports");
  r->set_type(Resource::RANGES);
  Range* range = r->add_ranges();
  range->set_begin(10);
  range->set_end(5);
  EXPECT_FALSE(Resources::validate(items).ok());
  range->set_end(15);
  EXPECT_TRUE(Resources::validate(items).ok());
  r->set_type(static_cast<Resource::Type>(7));
  EXPECT_FALSE(Resources::validate(items).ok());
}

}  // namespace
}  // namespace agora
