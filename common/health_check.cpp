#include "common/health_check.hpp"

namespace agora {

Status validateHealthCheck(const HealthCheck& check) {
  switch (check.type()) {
    case HealthCheck::COMMAND:
      if (check.command().value().empty()) {
        return Error("a COMMAND health check needs command.value");
      }
      break;
    case HealthCheck::HTTP:
      if (check.http().port() == 0 || check.http().port() > 65535) {
        return Error("an HTTP health check needs http.port (1-65535)");
      }
      if (!check.http().scheme().empty() && check.http().scheme() != "http") {
        return Error("HTTP health checks support the http scheme only, not '" +
                     check.http().scheme() + "'");
      }
      if (!check.http().path().empty() && check.http().path()[0] != '/') {
        return Error("an HTTP health check's path must start with '/'");
      }
      break;
    case HealthCheck::TCP:
      if (check.tcp().port() == 0 || check.tcp().port() > 65535) {
        return Error("a TCP health check needs tcp.port (1-65535)");
      }
      break;
    default:
      return Error("a health check needs a type: COMMAND, HTTP or TCP");
  }
  for (double v : {check.delay_seconds(), check.interval_seconds(), check.timeout_seconds(),
                   check.grace_period_seconds()}) {
    if (!(v >= 0) || v > 86400 * 365) {
      return Error(
          "a health check's delay, interval, timeout and grace period must be between "
          "0 and a year");
    }
  }
  return ok();
}

}  // namespace agora
