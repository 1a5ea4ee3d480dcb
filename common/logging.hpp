#pragma once

#include <string>

namespace agora {

// Sets up glog once per process: to stderr unless `logDir` is given, at verbosity `verbose`
// (glog's VLOG level), with a stack trace on fatal signals.
void initLogging(const char* argv0, const std::string& logDir, int verbose);

}  // namespace agora
