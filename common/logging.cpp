#include "common/logging.hpp"

#include <cstdlib>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "common/envelope.hpp"

namespace agora {

void initLogging(const char* argv0, const std::string& logDir, int verbose) {
  static bool done = false;
  if (done) {
    return;
  }
  done = true;
  // glog stamps every message with the local time, even those below --minloglevel, and with TZ
  // unset glibc stats /etc/localtime each time. Naming the same zone file once spares a
  // system call per log line (thousands a second while agents re-register after a failover).
  ::setenv("TZ", ":/etc/localtime", 0);
  if (logDir.empty()) {
    FLAGS_logtostderr = true;
  } else {
    FLAGS_log_dir = logDir;
    FLAGS_alsologtostderr = false;
  }
  FLAGS_v = verbose;
  FLAGS_colorlogtostderr = false;
  google::InitGoogleLogging(argv0);
  google::InstallFailureSignalHandler();
  quietProtobufLogging();
}

}  // namespace agora
