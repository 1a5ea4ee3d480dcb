#pragma once

// Device access on cgroups v2: there is no devices.allow file; a BPF program of type
// BPF_PROG_TYPE_CGROUP_DEVICE, attached to the cgroup, says yes or no to each open and mknod
// of a device by the cgroup's processes (and those of the cgroups below it). Agora writes the
// program itself, a handful of instructions per rule, from the same rules as v1's
// devices.allow ("c 1:3 rwm", "c 136:* rw", "a"), so no BPF toolchain is needed.

#include <linux/bpf.h>

#include <string>
#include <vector>

#include "common/result.hpp"

namespace agora::cgroups {

struct DeviceRule {
  char type = 'a';   // 'c', 'b', or 'a' (any)
  int64_t major = -1;  // -1: any
  int64_t minor = -1;
  uint32_t access = 7;  // BPF_DEVCG_ACC_MKNOD | READ | WRITE
};

// "c 1:3 rwm" -> a rule; an error that names what is wrong otherwise.
Result<DeviceRule> parseDeviceRule(const std::string& text);

// The program that allows what one of `rules` allows, and denies everything else.
Result<std::vector<bpf_insn>> deviceProgram(const std::vector<std::string>& rules);

// Loads that program and attaches it to the cgroup v2 directory `dir`, in place of the one
// attached there before (so the rules change in one step, never leaving a gap).
Status attachDeviceProgram(const std::string& dir, const std::vector<std::string>& rules);

}  // namespace agora::cgroups
