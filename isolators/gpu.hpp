#pragma once

// NVIDIA GPUs: finding them and the device rules that let a container use them.
//
// GPUs are found through NVML (libnvidia-ml.so.1, loaded at run time, so Agora has no build
// dependency on the driver), or named by the operator (`--gpus=0,1`, with the device files in
// `--nvidia_dev_dir`). A machine without the driver simply has no GPUs. A container given GPUs
// may open their device files (/dev/nvidia<minor>) and the driver's control devices
// (nvidiactl, nvidia-uvm, ...), through the devices cgroup; the others stay denied.

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace agora::gpu {

struct Gpu {
  uint32_t index = 0;  // NVML's index (what NVIDIA_VISIBLE_DEVICES and nvidia-smi use)
  uint32_t minor = 0;  // /dev/nvidia<minor>
  uint32_t major = 195;
  std::string uuid;    // "GPU-..." (empty when named by --gpus)
  std::string name;    // the model, when NVML says
  std::string device;  // its device file

  // The devices cgroup rule that allows it: "c 195:0 rwm".
  std::string rule() const;
};

struct Inventory {
  std::vector<Gpu> gpus;
  // Rules for the driver's own devices every GPU container needs (nvidiactl, nvidia-uvm, ...).
  std::vector<std::string> controlRules;
  std::vector<std::string> controlDevices;  // their device files
  std::string source;  // how they were found, for the log: "NVML 12.535 (libnvidia-ml.so.1)"
};

struct Options {
  std::string gpus;             // --gpus: "0,1" (empty: ask NVML)
  std::string devDir = "/dev";  // --nvidia_dev_dir
  std::string nvmlLibrary = "libnvidia-ml.so.1";
};

// Finds the GPUs. No driver (NVML cannot be loaded or initialised) is not an error: an empty
// inventory whose `source` says why. A --gpus list that names a missing device is an error.
Result<Inventory> discover(const Options& options);

// "0,1,3" -> {0, 1, 3}; an error for anything else (or a repeat).
Result<std::vector<uint32_t>> parseIndexes(const std::string& text);

}  // namespace agora::gpu
