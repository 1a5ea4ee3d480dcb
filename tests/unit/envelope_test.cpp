#include <random>

#include <gtest/gtest.h>

#include "common/envelope.hpp"

namespace agora {
namespace {

TEST(EnvelopeTest, RoundTrips) {
  Envelope e;
  e.mutable_agent_call()->mutable_pong()->set_master_id("m");
  std::string bytes = encodeEnvelope(e);
  auto decoded = decodeEnvelope(bytes.data(), bytes.size());
  ASSERT_TRUE(decoded.ok()) << decoded.error();
  EXPECT_EQ(decoded->agent_call().pong().master_id(), "m");
  EXPECT_EQ(envelopeKind(*decoded), "agent_call.pong");
}

TEST(EnvelopeTest, EmptyAndBodilessFramesAreErrors) {
  EXPECT_FALSE(decodeEnvelope("", 0).ok());
  Envelope e;
  e.mutable_scheduler_call();  // a call without a call
  std::string bytes = encodeEnvelope(e);
  EXPECT_FALSE(decodeEnvelope(bytes.data(), bytes.size()).ok());
  Envelope f;
  f.mutable_executor_event();
  bytes = encodeEnvelope(f);
  EXPECT_FALSE(decodeEnvelope(bytes.data(), bytes.size()).ok());
}

TEST(EnvelopeTest, TruncatedFramesAreErrors) {
  Envelope e;
  auto* task = e.mutable_agent_event()->mutable_run_task()->mutable_task();
  task->set_task_id("a-task-with-a-long-enough-id");
  task->mutable_command()->set_value("echo hello");
  std::string bytes = encodeEnvelope(e);
  for (size_t n = 1; n < bytes.size(); ++n) {
    auto decoded = decodeEnvelope(bytes.data(), n);
    if (decoded.ok()) {
      // A prefix that happens to be a complete message must still carry a body.
      EXPECT_NE(decoded->body_case(), Envelope::BODY_NOT_SET);
    }
  }
}

TEST(EnvelopeTest, GarbageNeverCrashesAndRarelyDecodes) {
  std::mt19937_64 rng(42);
  int decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes(rng() % 512, '\0');
    for (char& c : bytes) {
      c = static_cast<char>(rng());
    }
    auto e = decodeEnvelope(bytes.data(), bytes.size());
    if (e.ok()) {
      ++decoded;
      EXPECT_NE(e->body_case(), Envelope::BODY_NOT_SET);
      (void)envelopeKind(*e);
    }
  }
  EXPECT_LT(decoded, 200);
}

}  // namespace
}  // namespace agora
