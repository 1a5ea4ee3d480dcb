#include "common/envelope.hpp"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/stubs/logging.h>

namespace agora {

namespace {

const std::string& bodyName(const Envelope& e) {
  const auto* field = Envelope::descriptor()->FindFieldByNumber(e.body_case());
  static const std::string kNone = "none";
  return field == nullptr ? kNone : field->name();
}

template <typename Message>
std::string innerName(const Message& m, int number) {
  const auto* field = Message::descriptor()->FindFieldByNumber(number);
  return field == nullptr ? "none" : field->name();
}

}  // namespace

Result<Envelope> decodeEnvelope(const void* data, size_t size) {
  if (size > static_cast<size_t>(INT32_MAX)) {
    return Error("frame too large");
  }
  Envelope envelope;
  google::protobuf::io::CodedInputStream in(static_cast<const uint8_t*>(data),
                                            static_cast<int>(size));
  in.SetRecursionLimit(32);
  if (!envelope.ParseFromCodedStream(&in) || !in.ConsumedEntireMessage()) {
    return Error("malformed envelope (" + std::to_string(size) + " bytes)");
  }
  switch (envelope.body_case()) {
    case Envelope::kSchedulerCall:
      if (envelope.scheduler_call().call_case() == SchedulerCall::CALL_NOT_SET) {
        return Error("scheduler call without a call");
      }
      break;
    case Envelope::kSchedulerEvent:
      if (envelope.scheduler_event().event_case() == SchedulerEvent::EVENT_NOT_SET) {
        return Error("scheduler event without an event");
      }
      break;
    case Envelope::kAgentCall:
      if (envelope.agent_call().call_case() == AgentCall::CALL_NOT_SET) {
        return Error("agent call without a call");
      }
      break;
    case Envelope::kAgentEvent:
      if (envelope.agent_event().event_case() == AgentEvent::EVENT_NOT_SET) {
        return Error("agent event without an event");
      }
      break;
    case Envelope::kExecutorCall:
      if (envelope.executor_call().call_case() == ExecutorCall::CALL_NOT_SET) {
        return Error("executor call without a call");
      }
      break;
    case Envelope::kExecutorEvent:
      if (envelope.executor_event().event_case() == ExecutorEvent::EVENT_NOT_SET) {
        return Error("executor event without an event");
      }
      break;
    case Envelope::BODY_NOT_SET:
      return Error("envelope without a body (" + std::to_string(size) + " bytes)");
  }
  return envelope;
}

std::string encodeEnvelope(const Envelope& envelope) { return envelope.SerializeAsString(); }

std::string envelopeKind(const Envelope& e) {
  switch (e.body_case()) {
    case Envelope::kSchedulerCall:
      return bodyName(e) + "." + innerName(e.scheduler_call(), e.scheduler_call().call_case());
    case Envelope::kSchedulerEvent:
      return bodyName(e) + "." + innerName(e.scheduler_event(), e.scheduler_event().event_case());
    case Envelope::kAgentCall:
      return bodyName(e) + "." + innerName(e.agent_call(), e.agent_call().call_case());
    case Envelope::kAgentEvent:
      return bodyName(e) + "." + innerName(e.agent_event(), e.agent_event().event_case());
    case Envelope::kExecutorCall:
      return bodyName(e) + "." + innerName(e.executor_call(), e.executor_call().call_case());
    case Envelope::kExecutorEvent:
      return bodyName(e) + "." + innerName(e.executor_event(), e.executor_event().event_case());
    case Envelope::BODY_NOT_SET:
      break;
  }
  return "none";
}

void quietProtobufLogging() {
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel level, const char* file, int line,
                                     const std::string& message) {
    if (level >= google::protobuf::LOGLEVEL_FATAL) {
      LOG(FATAL) << "protobuf " << file << ":" << line << ": " << message;
    }
    VLOG(1) << "protobuf " << file << ":" << line << ": " << message;
  });
}

}  // namespace agora
