#pragma once

// The cgroups below which a test's isolated agents made their containers (--cgroups_root):
// after the cluster has stopped nothing may be left running in them, and they go.

#include <gtest/gtest.h>

#include <string>

#include "isolators/cgroups.hpp"

namespace agora::testing {

inline void removeCgroupsRoot(const std::string& root) {
  if (root.empty()) {
    return;
  }
  if (auto layout = cgroups::detectLayout()) {
    cgroups::Container parent(*layout, "", root);
    EXPECT_TRUE(parent.processes().empty()) << "processes left in cgroups " << root;
    EXPECT_TRUE(parent.destroy(seconds(10)).ok());
  }
}

}  // namespace agora::testing
