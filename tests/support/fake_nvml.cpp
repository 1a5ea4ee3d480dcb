// A stand-in for the NVIDIA driver's NVML (libnvidia-ml.so.1) with the few entry points Agora
// loads, for tests on machines without GPUs. FAKE_NVML_GPUS says how many GPUs it reports
// (default 4; minor numbers 0..n-1); FAKE_NVML_FAIL=1 makes nvmlInit_v2 fail as it does when
// the kernel module is not loaded.

#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" {

typedef void* nvmlDevice_t;

static unsigned int count(void) {
  const char* n = getenv("FAKE_NVML_GPUS");
  return n != NULL ? (unsigned int)atoi(n) : 4u;
}

int nvmlInit_v2(void) {
  const char* fail = getenv("FAKE_NVML_FAIL");
  return fail != NULL && strcmp(fail, "1") == 0 ? 9 /* NVML_ERROR_DRIVER_NOT_LOADED */ : 0;
}

int nvmlShutdown(void) { return 0; }

const char* nvmlErrorString(int result) {
  return result == 9 ? "Driver Not Loaded" : result == 0 ? "Success" : "Unknown Error";
}

int nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  snprintf(version, length, "fake-1.0");
  return 0;
}

int nvmlDeviceGetCount_v2(unsigned int* n) {
  *n = count();
  return 0;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  if (index >= count()) {
    return 2; /* NVML_ERROR_INVALID_ARGUMENT */
  }
  *device = (nvmlDevice_t)(unsigned long)(index + 1);
  return 0;
}

int nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int* minor) {
  *minor = (unsigned int)(unsigned long)device - 1;
  return 0;
}

int nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned int length) {
  snprintf(uuid, length, "GPU-fake-%u", (unsigned int)(unsigned long)device - 1);
  return 0;
}

int nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned int length) {
  snprintf(name, length, "Fake GPU");
  return 0;
}

}  // extern "C"
