#include "isolators/gpu.hpp"

#include <dlfcn.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <set>

namespace agora::gpu {

namespace {

// The few NVML entry points Agora needs, declared as NVML's C API has them.
using NvmlReturn = int;  // NVML_SUCCESS is 0
using NvmlDevice = void*;
constexpr NvmlReturn kNvmlSuccess = 0;

struct Nvml {
  void* library = nullptr;
  NvmlReturn (*init)() = nullptr;
  NvmlReturn (*shutdown)() = nullptr;
  NvmlReturn (*count)(unsigned int*) = nullptr;
  NvmlReturn (*handle)(unsigned int, NvmlDevice*) = nullptr;
  NvmlReturn (*getMinor)(NvmlDevice, unsigned int*) = nullptr;
  NvmlReturn (*uuid)(NvmlDevice, char*, unsigned int) = nullptr;
  NvmlReturn (*name)(NvmlDevice, char*, unsigned int) = nullptr;
  NvmlReturn (*driver)(char*, unsigned int) = nullptr;
  const char* (*error)(NvmlReturn) = nullptr;

  ~Nvml() {
    if (library != nullptr) {
      ::dlclose(library);
    }
  }
  std::string why(NvmlReturn r) const {
    return error != nullptr ? error(r) : "NVML error " + std::to_string(r);
  }
};

template <typename F>
bool bind(void* library, const char* symbol, F* out) {
  *out = reinterpret_cast<F>(::dlsym(library, symbol));
  return *out != nullptr;
}

// A character device's "c MAJOR:MINOR rwm", or an error.
Result<std::pair<uint32_t, uint32_t>> characterDevice(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return Error("no device " + path);
  }
  if (!S_ISCHR(st.st_mode)) {
    return Error(path + " is not a character device");
  }
  return std::make_pair(static_cast<uint32_t>(major(st.st_rdev)),
                        static_cast<uint32_t>(minor(st.st_rdev)));
}

// The driver's control devices: their cgroup rules and their files.
void addControlDevices(const std::string& devDir, Inventory* inventory) {
  for (const char* name : {"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"}) {
    if (auto dev = characterDevice(devDir + "/" + name)) {
      inventory->controlRules.push_back("c " + std::to_string(dev->first) + ":" +
                                        std::to_string(dev->second) + " rwm");
      inventory->controlDevices.push_back(devDir + "/" + name);
    }
  }
}

}  // namespace

std::string Gpu::rule() const {
  return "c " + std::to_string(major) + ":" + std::to_string(minor) + " rwm";
}

Result<std::vector<uint32_t>> parseIndexes(const std::string& text) {
  std::vector<uint32_t> out;
  std::set<uint32_t> seen;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (item.empty() || item.size() > 4 ||
        item.find_first_not_of("0123456789") != std::string::npos) {
      return Error("--gpus: '" + item + "' is not a GPU index (expected a list like 0,1,3)");
    }
    uint32_t index = static_cast<uint32_t>(std::stoul(item));
    if (!seen.insert(index).second) {
      return Error("--gpus: GPU " + item + " is named twice");
    }
    out.push_back(index);
    if (comma == std::string::npos) {
      break;
    }
    start = comma + 1;
  }
  return out;
}

Result<Inventory> discover(const Options& options) {
  Inventory inventory;
  if (!options.gpus.empty()) {
    auto indexes = parseIndexes(options.gpus);
    if (!indexes) {
      return Error(indexes.error());
    }
    for (uint32_t index : *indexes) {
      Gpu gpu;
      gpu.index = index;
      gpu.device = options.devDir + "/nvidia" + std::to_string(index);
      auto dev = characterDevice(gpu.device);
      if (!dev) {
        return Error("--gpus: GPU " + std::to_string(index) + ": " + dev.error() +
                     " (see --nvidia_dev_dir)");
      }
      gpu.major = dev->first;
      gpu.minor = dev->second;
      inventory.gpus.push_back(gpu);
    }
    addControlDevices(options.devDir, &inventory);
    inventory.source = "--gpus in " + options.devDir;
    return inventory;
  }

  Nvml nvml;
  nvml.library = ::dlopen(options.nvmlLibrary.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (nvml.library == nullptr) {
    const char* why = ::dlerror();
    inventory.source = "no NVIDIA driver: " +
                       std::string(why != nullptr ? why : "cannot load " + options.nvmlLibrary);
    return inventory;
  }
  bool bound = bind(nvml.library, "nvmlInit_v2", &nvml.init) &&
               bind(nvml.library, "nvmlShutdown", &nvml.shutdown) &&
               bind(nvml.library, "nvmlDeviceGetCount_v2", &nvml.count) &&
               bind(nvml.library, "nvmlDeviceGetHandleByIndex_v2", &nvml.handle) &&
               bind(nvml.library, "nvmlDeviceGetMinorNumber", &nvml.getMinor) &&
               bind(nvml.library, "nvmlDeviceGetUUID", &nvml.uuid);
  bind(nvml.library, "nvmlDeviceGetName", &nvml.name);
  bind(nvml.library, "nvmlSystemGetDriverVersion", &nvml.driver);
  bind(nvml.library, "nvmlErrorString", &nvml.error);
  if (!bound) {
    inventory.source = options.nvmlLibrary + " lacks the NVML functions Agora needs";
    return inventory;
  }
  if (NvmlReturn r = nvml.init(); r != kNvmlSuccess) {
    inventory.source = "NVML did not start (" + nvml.why(r) + "): no usable NVIDIA driver";
    return inventory;
  }
  unsigned int count = 0;
  NvmlReturn r = nvml.count(&count);
  std::string failure;
  for (unsigned int i = 0; r == kNvmlSuccess && i < count && failure.empty(); ++i) {
    NvmlDevice device = nullptr;
    unsigned int minorNumber = 0;
    char text[96] = {0};
    if ((r = nvml.handle(i, &device)) != kNvmlSuccess ||
        (r = nvml.getMinor(device, &minorNumber)) != kNvmlSuccess ||
        (r = nvml.uuid(device, text, sizeof(text))) != kNvmlSuccess) {
      failure = "GPU " + std::to_string(i) + ": " + nvml.why(r);
      break;
    }
    Gpu gpu;
    gpu.index = i;
    gpu.minor = minorNumber;
    gpu.uuid = text;
    if (nvml.name != nullptr && nvml.name(device, text, sizeof(text)) == kNvmlSuccess) {
      gpu.name = text;
    }
    gpu.device = options.devDir + "/nvidia" + std::to_string(minorNumber);
    if (auto dev = characterDevice(gpu.device)) {
      gpu.major = dev->first;
    } else {
      failure = "GPU " + std::to_string(i) + ": " + dev.error();
    }
    inventory.gpus.push_back(gpu);
  }
  std::string version;
  if (char text[96] = {0};
      nvml.driver != nullptr && nvml.driver(text, sizeof(text)) == kNvmlSuccess) {
    version = std::string(" (driver ") + text + ")";
  }
  nvml.shutdown();
  if (r != kNvmlSuccess && failure.empty()) {
    failure = nvml.why(r);
  }
  if (!failure.empty()) {
    return Error("NVML: " + failure);
  }
  addControlDevices(options.devDir, &inventory);
  inventory.source = "NVML" + version + " from " + options.nvmlLibrary;
  return inventory;
}

}  // namespace agora::gpu
