#pragma once

#include <string>

#include "agora/protocol.pb.h"
#include "common/result.hpp"

namespace agora {

// Decodes one frame into an Envelope. Garbage, truncated frames and envelopes that carry no
// call or event are errors; nothing about the bytes is trusted.
Result<Envelope> decodeEnvelope(const void* data, size_t size);

std::string encodeEnvelope(const Envelope& envelope);

// A short name for logs and metrics: "scheduler_call.accept", "agent_call.register", ...
std::string envelopeKind(const Envelope& envelope);

// Routes protobuf's own log lines (for example on invalid UTF-8 in a peer's message) into glog
// at verbose level, so that a peer sending garbage cannot flood the daemon's log.
void quietProtobufLogging();

}  // namespace agora
