#include <gtest/gtest.h>

#include <cstdlib>

#include "common/flags.hpp"
#include "common/ids.hpp"

namespace agora {
namespace {

Result<std::vector<std::string>> parse(Flags& flags, std::vector<const char*> args) {
  args.insert(args.begin(), "prog");
  return flags.parse(static_cast<int>(args.size()), args.data());
}

TEST(FlagsTest, ParsesEveryForm) {
  std::string s = "x";
  int n = 1;
  double d = 0.5;
  bool b = false;
  bool c = true;
  Duration t = seconds(1);
  Flags flags("prog", "test");
  flags.add(&s, "name", "");
  flags.add(&n, "count", "");
  flags.add(&d, "ratio", "");
  flags.add(&b, "on", "");
  flags.add(&c, "keep", "");
  flags.add(&t, "timeout", "");
  auto rest = parse(flags, {"--name=hello", "--count", "7", "pos", "--ratio=2.5", "--on",
                            "--no-keep", "--timeout=250ms", "--", "--not-a-flag"});
  ASSERT_TRUE(rest.ok()) << rest.error();
  EXPECT_EQ(s, "hello");
  EXPECT_EQ(n, 7);
  EXPECT_DOUBLE_EQ(d, 2.5);
  EXPECT_TRUE(b);
  EXPECT_FALSE(c);
  EXPECT_EQ(t, milliseconds(250));
  EXPECT_EQ(*rest, (std::vector<std::string>{"pos", "--not-a-flag"}));
  EXPECT_TRUE(flags.wasSet("name"));
}

TEST(FlagsTest, RejectsUnknownFlagsAndBadValues) {
  int n = 0;
  Duration t;
  Flags flags("prog", "test");
  flags.add(&n, "count", "");
  flags.add(&t, "timeout", "");
  EXPECT_FALSE(parse(flags, {"--nope=1"}).ok());
  EXPECT_FALSE(parse(flags, {"--count=abc"}).ok());
  EXPECT_FALSE(parse(flags, {"--count=99999999999"}).ok());
  EXPECT_FALSE(parse(flags, {"--timeout=5 parsecs"}).ok());
  EXPECT_FALSE(parse(flags, {"--count"}).ok());
}

TEST(FlagsTest, FallsBackToTheEnvironment) {
  int n = 0;
  Flags flags("prog", "test");
  flags.add(&n, "flags_test_number", "");
  ::setenv("AGORA_FLAGS_TEST_NUMBER", "42", 1);
  ASSERT_TRUE(parse(flags, {}).ok());
  EXPECT_EQ(n, 42);
  ASSERT_TRUE(parse(flags, {"--flags_test_number=3"}).ok());
  EXPECT_EQ(n, 3);  // the command line wins
  ::unsetenv("AGORA_FLAGS_TEST_NUMBER");
}

TEST(DurationTest, ParsesAndFormats) {
  EXPECT_EQ(*parseDuration("15secs"), seconds(15));
  EXPECT_EQ(*parseDuration("1.5s"), milliseconds(1500));
  EXPECT_EQ(*parseDuration("2mins"), minutes(2));
  EXPECT_EQ(*parseDuration("3"), seconds(3));
  EXPECT_FALSE(parseDuration("-1s").ok());
  EXPECT_FALSE(parseDuration("s").ok());
  EXPECT_EQ(formatDuration(milliseconds(250)), "250ms");
  EXPECT_EQ(formatDuration(minutes(15)), "15mins");
}

TEST(IdsTest, ValidatesIdsAndRoles) {
  EXPECT_TRUE(validateId("task-1.a_b", "id").ok());
  for (const char* bad : {"", ".", "..", "a/b", "a b", "tab\t"}) {
    EXPECT_FALSE(validateId(bad, "id").ok()) << bad;
  }
  EXPECT_TRUE(validateRole("*").ok());
  EXPECT_TRUE(validateRole("eng/web").ok());
  for (const char* bad : {"", "/eng", "eng/", "eng//web", "-x", "a b", "eng/*"}) {
    EXPECT_FALSE(validateRole(bad).ok()) << bad;
  }
  EXPECT_EQ(uuidBytes().size(), 16u);
  EXPECT_NE(uuidString(), uuidString());
}

}  // namespace
}  // namespace agora
