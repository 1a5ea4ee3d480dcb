#include "common/logging.hpp"

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
