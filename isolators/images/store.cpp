#include "isolators/images/store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "common/ids.hpp"
#include "common/time.hpp"

namespace agora::images {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> stringList(const json& j, const char* key) {
  std::vector<std::string> out;
  if (j.contains(key) && j[key].is_array()) {
    for (const auto& v : j[key]) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    }
  }
  return out;
}

Result<json> readJson(const std::string& path, const std::string& what) {
  auto text = readFile(path);
  if (!text) return Error("no " + what + " (" + path + ")");
  auto j = json::parse(*text, nullptr, false);
  if (j.is_discarded()) return Error(what + " is not JSON");
  return j;
}

// What an archive holds, checked: the config, and the layer blobs in order.
struct Plan {
  std::string configPath;
  std::string configDigest;
  std::vector<std::string> layerBlobs;
  std::vector<std::string> names;
};

const std::set<std::string> kLayerTypes = {
    "application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar"};

// A blob of an OCI layout, checked against its descriptor.
Result<std::string> blob(const std::string& root, const json& descriptor) {
  std::string digest = descriptor.value("digest", "");
  if (digest.rfind("sha256:", 0) != 0 || digest.size() != 71) {
    return Error("descriptor digest '" + digest + "' is not sha256:<64 hex>");
  }
  std::string path = root + "/blobs/sha256/" + digest.substr(7);
  if (!pathExists(path)) return Error("missing blob " + digest);
  auto actual = sha256File(path);
  if (!actual) return Error(actual.error());
  if (*actual != digest) return Error("digest mismatch for blob " + digest + ": its content is " + *actual);
  if (descriptor.contains("size") && descriptor["size"].is_number_unsigned() &&
      fs::file_size(path) != descriptor["size"].get<uint64_t>()) {
    return Error("blob " + digest + " is not the size its descriptor says");
  }
  return path;
}

Result<Plan> planOci(const std::string& root, const std::string& wanted) {
  auto index = readJson(root + "/index.json", "index.json");
  if (!index) return Error(index.error());
  if (!index->contains("manifests") || !(*index)["manifests"].is_array() ||
      (*index)["manifests"].empty()) {
    return Error("index.json lists no manifests");
  }
  json chosen;
  std::vector<std::string> refs;
  for (const auto& m : (*index)["manifests"]) {
    std::string ref;
    if (m.contains("annotations") && m["annotations"].is_object()) {
      ref = m["annotations"].value("org.opencontainers.image.ref.name", "");
    }
    refs.push_back(ref);
    std::string tag = wanted.substr(wanted.rfind(':') + 1);
    if (!wanted.empty() && (ref == wanted || ref == tag)) chosen = m;
  }
  if (chosen.is_null()) {
    if ((*index)["manifests"].size() > 1) {
      return Error("the archive holds several images; name one with --name (it has: " +
                   [&] { std::string s; for (auto& r : refs) s += (s.empty() ? "" : ", ") + (r.empty() ? "(unnamed)" : r); return s; }() + ")");
    }
    chosen = (*index)["manifests"][0];
  }
  std::string type = chosen.value("mediaType", "application/vnd.oci.image.manifest.v1+json");
  if (type != "application/vnd.oci.image.manifest.v1+json" &&
      type != "application/vnd.docker.distribution.manifest.v2+json") {
    return Error("unsupported media type " + type + " (an image manifest is needed)");
  }
  auto manifestPath = blob(root, chosen);
  if (!manifestPath) return Error(manifestPath.error());
  auto manifest = readJson(*manifestPath, "the manifest");
  if (!manifest) return Error(manifest.error());
  Plan plan;
  const json& config = (*manifest)["config"];
  if (!config.is_object()) return Error("the manifest has no config");
  std::string configType = config.value("mediaType", "");
  if (configType != "application/vnd.oci.image.config.v1+json" &&
      configType != "application/vnd.docker.container.image.v1+json") {
    return Error("unsupported media type " + configType + " for the image config");
  }
  auto configPath = blob(root, config);
  if (!configPath) return Error(configPath.error());
  plan.configPath = *configPath;
  plan.configDigest = config.value("digest", "");
  if (!(*manifest)["layers"].is_array()) return Error("the manifest has no layers");
  for (const auto& layer : (*manifest)["layers"]) {
    std::string layerType = layer.value("mediaType", "");
    if (kLayerTypes.count(layerType) == 0) {
      return Error("unsupported media type " + layerType + " for a layer (tar and tar+gzip are)");
    }
    auto path = blob(root, layer);
    if (!path) return Error(path.error());
    plan.layerBlobs.push_back(*path);
  }
  std::string ref = refs[0];
  if (!wanted.empty()) plan.names.push_back(wanted);
  else if (!ref.empty() && ref.find(':') != std::string::npos) plan.names.push_back(ref);
  return plan;
}

Result<Plan> planDocker(const std::string& root, const std::string& wanted) {
  auto manifest = readJson(root + "/manifest.json", "manifest.json");
  if (!manifest) return Error(manifest.error());
  if (!manifest->is_array() || manifest->empty()) return Error("manifest.json lists no images");
  json chosen = (*manifest)[0];
  if (!wanted.empty()) {
    for (const auto& m : *manifest) {
      for (const auto& tag : stringList(m, "RepoTags")) {
        if (tag == wanted) chosen = m;
      }
    }
  }
  Plan plan;
  std::string config = chosen.value("Config", "");
  auto clean = cleanPath(config);
  if (config.empty() || !clean) return Error("manifest.json names no config");
  plan.configPath = root + "/" + *clean;
  if (!pathExists(plan.configPath)) return Error("missing config " + config);
  auto digest = sha256File(plan.configPath);
  if (!digest) return Error(digest.error());
  std::string named = fs::path(*clean).stem().string();
  if (named.size() == 64 && "sha256:" + named != *digest) {
    return Error("digest mismatch for the config " + config + ": its content is " + *digest);
  }
  plan.configDigest = *digest;
  for (const std::string& layer : stringList(chosen, "Layers")) {
    auto path = cleanPath(layer);
    if (!path) return Error(path.error());
    if (!pathExists(root + "/" + *path)) return Error("missing layer " + layer);
    plan.layerBlobs.push_back(root + "/" + *path);
  }
  if (!wanted.empty()) plan.names.push_back(wanted);
  else for (const auto& tag : stringList(chosen, "RepoTags")) plan.names.push_back(tag);
  return plan;
}

RunConfig runConfigOf(const json& config) {
  RunConfig run;
  if (!config.is_object()) return run;
  run.entrypoint = stringList(config, "Entrypoint");
  run.cmd = stringList(config, "Cmd");
  run.env = stringList(config, "Env");
  run.workingDir = config.value("WorkingDir", "");
  run.user = config.value("User", "");
  if (config.contains("ExposedPorts") && config["ExposedPorts"].is_object()) {
    for (const auto& [port, ignored] : config["ExposedPorts"].items()) run.exposedPorts.push_back(port);
  }
  return run;
}

json toJson(const Image& image) {
  return {{"id", image.id},
          {"names", image.names},
          {"layers", image.layers},
          {"size", image.size},
          {"imported", image.imported},
          {"config",
           {{"Entrypoint", image.config.entrypoint},
            {"Cmd", image.config.cmd},
            {"Env", image.config.env},
            {"WorkingDir", image.config.workingDir},
            {"User", image.config.user},
            {"ExposedPorts", image.config.exposedPorts}}}};
}

// A lock on the store for changes (imports commit, removals).
class StoreLock {
 public:
  explicit StoreLock(const std::string& dir) {
    fd_ = ::open((dir + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
  }
  ~StoreLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  int fd_ = -1;
};

}  // namespace

Result<std::string> normalizeName(const std::string& name) {
  if (name.empty() || name.size() > 255) return Error("an image name is repo[:tag]");
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ||
          c == '/' || c == ':')) {
      return Error("image name '" + name + "' has a character other than letters, digits, . - _ / :");
    }
  }
  size_t slash = name.rfind('/');
  size_t colon = name.rfind(':');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) {
    return name + ":latest";
  }
  if (colon == 0 || colon + 1 == name.size()) return Error("image name '" + name + "' is not repo[:tag]");
  return name;
}

std::string Store::layerPath(const std::string& diffId) const {
  return dir_ + "/layers/" + diffId.substr(diffId.find(':') + 1);
}

Result<Image> Store::import(const std::string& tarball, const std::string& name) {
  // The archive's JSON (index, manifests, config) is read with nlohmann::json, whose typed
  // reads throw when a field has the wrong type: that is a bad archive, not a crash.
  try {
    return importChecked(tarball, name);
  } catch (const nlohmann::json::exception& e) {
    return Error(tarball + ": malformed image metadata: " + e.what());
  }
}

Result<Image> Store::importChecked(const std::string& tarball, const std::string& name) {
  std::string wanted;
  if (!name.empty()) {
    auto normalized = normalizeName(name);
    if (!normalized) return Error(normalized.error());
    wanted = *normalized;
  }
  if (::geteuid() != 0) {
    return Error("importing images needs root (layers keep their files' owners, and "
                 "whiteouts are device nodes)");
  }
  if (!pathExists(tarball)) return Error("no file " + tarball);
  std::string work = dir_ + "/tmp/import-" + uuidString();
  if (Status made = makeDirectories(work + "/archive"); !made) return Error(made.error());
  struct Cleanup {
    std::string dir;
    ~Cleanup() { (void)removeAll(dir); }
  } cleanup{work};

  if (Status s = extractArchive(tarball, work + "/archive"); !s) return Error(s.error());
  std::string root = work + "/archive";
  Result<Plan> plan = pathExists(root + "/index.json") ? planOci(root, wanted)
                      : pathExists(root + "/manifest.json")
                          ? planDocker(root, wanted)
                          : Result<Plan>(Error("neither an OCI image layout (index.json) nor a "
                                               "docker save archive (manifest.json)"));
  if (!plan) return Error(tarball + ": " + plan.error());
  auto config = readJson(plan->configPath, "the image config");
  if (!config) return Error(tarball + ": " + config.error());
  std::vector<std::string> diffIds;
  if (config->contains("rootfs") && (*config)["rootfs"].is_object()) {
    diffIds = stringList((*config)["rootfs"], "diff_ids");
  }
  if (diffIds.size() != plan->layerBlobs.size()) {
    return Error(tarball + ": the config lists " + std::to_string(diffIds.size()) +
                 " layers and the manifest " + std::to_string(plan->layerBlobs.size()));
  }
  Image image;
  image.id = plan->configDigest;
  image.names = plan->names;
  image.config = runConfigOf((*config)["config"]);
  std::vector<std::string> unpacked;
  for (size_t i = 0; i < plan->layerBlobs.size(); ++i) {
    auto digest = uncompressedDigest(plan->layerBlobs[i]);
    if (!digest) return Error(tarball + ": layer " + std::to_string(i + 1) + ": " + digest.error());
    if (*digest != diffIds[i]) {
      return Error(tarball + ": digest mismatch for layer " + std::to_string(i + 1) +
                   ": the config says " + diffIds[i] + ", its content is " + *digest);
    }
    image.layers.push_back(*digest);
    std::string into = work + "/layers/" + std::to_string(i);
    if (pathExists(layerPath(*digest))) {
      unpacked.push_back("");  // in the store already
      continue;
    }
    if (Status made = makeDirectories(into); !made) return Error(made.error());
    UnpackStats stats;
    if (Status s = unpackLayer(plan->layerBlobs[i], into, &stats); !s) {
      return Error(tarball + ": layer " + std::to_string(i + 1) + ": " + s.error());
    }
    image.size += stats.bytes;
    unpacked.push_back(into);
  }
  return commit(std::move(image), unpacked);
}

Result<Image> Store::commit(Image image, const std::vector<std::string>& unpackedLayers) {
  StoreLock lock(dir_);
  if (Status made = makeDirectories(dir_ + "/layers"); !made) return Error(made.error());
  if (Status made = makeDirectories(dir_ + "/images"); !made) return Error(made.error());
  for (size_t i = 0; i < unpackedLayers.size(); ++i) {
    if (unpackedLayers[i].empty() || pathExists(layerPath(image.layers[i]))) continue;
    if (::rename(unpackedLayers[i].c_str(), layerPath(image.layers[i]).c_str()) != 0) {
      return Error("cannot store layer " + image.layers[i] + ": " + std::strerror(errno));
    }
  }
  image.imported = wallTimeNow();
  // A name belongs to one image: the newest.
  auto existing = list();
  if (existing) {
    for (Image& other : *existing) {
      if (other.id == image.id) {
        for (const std::string& n : other.names) {
          if (std::find(image.names.begin(), image.names.end(), n) == image.names.end()) {
            image.names.push_back(n);
          }
        }
        continue;
      }
      size_t before = other.names.size();
      std::erase_if(other.names, [&](const std::string& n) {
        return std::find(image.names.begin(), image.names.end(), n) != image.names.end();
      });
      if (other.names.size() != before) (void)writeImage(other);
    }
  }
  if (Status written = writeImage(image); !written) return Error(written.error());
  return image;
}

Status Store::writeImage(const Image& image) const {
  return writeFileAtomic(dir_ + "/images/" + image.id.substr(image.id.find(':') + 1) + ".json",
                         toJson(image).dump(2) + "\n");
}

Result<Image> Store::readImage(const std::string& path) const {
  auto j = readJson(path, "image record");
  if (!j) return Error(j.error());
  try {
    Image image;
    image.id = j->at("id").get<std::string>();
    image.names = stringList(*j, "names");
    image.layers = stringList(*j, "layers");
    image.size = j->value("size", uint64_t{0});
    image.imported = j->value("imported", 0.0);
    image.config = runConfigOf(j->value("config", json::object()));
    return image;
  } catch (const std::exception& e) {
    return Error(path + " is corrupt: " + e.what());
  }
}

Result<std::vector<Image>> Store::list() const {
  std::vector<Image> out;
  std::error_code ec;
  if (!fs::exists(dir_ + "/images", ec)) return out;
  for (const auto& entry : fs::directory_iterator(dir_ + "/images", ec)) {
    if (entry.path().extension() != ".json") continue;
    auto image = readImage(entry.path().string());
    if (image) out.push_back(std::move(*image));
  }
  std::sort(out.begin(), out.end(), [](const Image& a, const Image& b) { return a.imported > b.imported; });
  return out;
}

Result<Image> Store::find(const std::string& reference) const {
  auto images = list();
  if (!images) return Error(images.error());
  auto name = normalizeName(reference);
  std::vector<Image> byId;
  for (const Image& image : *images) {
    if (name && std::find(image.names.begin(), image.names.end(), *name) != image.names.end()) {
      return image;
    }
    std::string hexId = image.id.substr(image.id.find(':') + 1);
    if (reference == image.id || (reference.size() >= 6 && hexId.rfind(reference, 0) == 0)) {
      byId.push_back(image);
    }
  }
  if (byId.size() == 1) return byId[0];
  if (byId.size() > 1) return Error("'" + reference + "' names more than one image; give more of the id");
  return Error("no image '" + reference + "' in the store " + dir_ +
               " (import it with `agora image import FILE.tar --name=" + reference + "`)");
}

Status Store::remove(const std::string& reference) {
  StoreLock lock(dir_);
  auto image = find(reference);
  if (!image) return Error(image.error());
  auto name = normalizeName(reference);
  bool byName = name && std::find(image->names.begin(), image->names.end(), *name) != image->names.end();
  if (byName) {
    std::erase(image->names, *name);
  } else {
    image->names.clear();
  }
  if (!image->names.empty()) return writeImage(*image);
  if (::unlink((dir_ + "/images/" + image->id.substr(7) + ".json").c_str()) != 0) {
    return Error(std::string("cannot remove the image record: ") + std::strerror(errno));
  }
  // Layers no other image uses go too.
  std::set<std::string> used;
  if (auto rest = list()) {
    for (const Image& other : *rest) used.insert(other.layers.begin(), other.layers.end());
  }
  for (const std::string& layer : image->layers) {
    if (used.count(layer) == 0) (void)removeAll(layerPath(layer));
  }
  return ok();
}

int Store::collectGarbage(Duration staleAfter) {
  StoreLock lock(dir_);
  int removed = 0;
  std::set<std::string> used;
  if (auto images = list()) {
    for (const Image& image : *images) {
      for (const std::string& layer : image.layers) used.insert(layer.substr(layer.find(':') + 1));
    }
  }
  std::error_code ec;
  if (fs::exists(dir_ + "/layers", ec)) {
    for (const auto& entry : fs::directory_iterator(dir_ + "/layers", ec)) {
      if (used.count(entry.path().filename().string()) == 0 && removeAll(entry.path().string())) {
        ++removed;
      }
    }
  }
  auto cutoff = fs::file_time_type::clock::now() -
                std::chrono::duration_cast<fs::file_time_type::duration>(staleAfter);
  if (fs::exists(dir_ + "/tmp", ec)) {
    for (const auto& entry : fs::directory_iterator(dir_ + "/tmp", ec)) {
      if (fs::last_write_time(entry.path(), ec) < cutoff && removeAll(entry.path().string())) {
        ++removed;
      }
    }
  }
  return removed;
}

Result<Image> Store::buildFromDirectory(const std::string& directory, const std::string& name,
                                        const RunConfig& config) {
  auto normalized = normalizeName(name);
  if (!normalized) return Error(normalized.error());
  struct stat st;
  if (::stat(directory.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Error("no directory " + directory);
  }
  std::string work = dir_ + "/tmp/build-" + uuidString();
  if (Status made = makeDirectories(work); !made) return Error(made.error());
  struct Cleanup {
    std::string dir;
    ~Cleanup() { (void)removeAll(dir); }
  } cleanup{work};
  if (Status packed = packDirectory(directory, work + "/layer.tar"); !packed) {
    return Error(packed.error());
  }
  if (Status written = writeOciArchive(work + "/image.tar", {work + "/layer.tar"}, config,
                                       *normalized);
      !written) {
    return Error(written.error());
  }
  return import(work + "/image.tar", *normalized);
}

std::vector<TarEntry> ociLayout(const std::vector<std::string>& layerData,
                                const RunConfig& config, const std::string& name,
                                const std::string& layerType) {
  std::vector<TarEntry> files = {{"oci-layout", 'f', R"({"imageLayoutVersion":"1.0.0"})"},
                                 {"blobs", 'd', "", "", 0755},
                                 {"blobs/sha256", 'd', "", "", 0755}};
  json layers = json::array();
  json diffIds = json::array();
  for (const std::string& data : layerData) {
    std::string digest = sha256Bytes(data);
    diffIds.push_back(digest);
    layers.push_back({{"mediaType", layerType}, {"digest", digest}, {"size", data.size()}});
    files.push_back({"blobs/sha256/" + digest.substr(7), 'f', data});
  }
  json exposed = json::object();
  for (const std::string& port : config.exposedPorts) exposed[port] = json::object();
  json runConfig = {{"Env", config.env}, {"WorkingDir", config.workingDir}, {"User", config.user},
                    {"ExposedPorts", exposed}};
  if (!config.entrypoint.empty()) runConfig["Entrypoint"] = config.entrypoint;
  if (!config.cmd.empty()) runConfig["Cmd"] = config.cmd;
  std::string configJson = json{{"architecture", "amd64"},
                                {"os", "linux"},
                                {"config", runConfig},
                                {"rootfs", {{"type", "layers"}, {"diff_ids", diffIds}}}}
                               .dump();
  std::string configDigest = sha256Bytes(configJson);
  std::string manifest = json{{"schemaVersion", 2},
                              {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                              {"config",
                               {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                                {"digest", configDigest},
                                {"size", configJson.size()}}},
                              {"layers", layers}}
                             .dump();
  std::string manifestDigest = sha256Bytes(manifest);
  files.push_back({"blobs/sha256/" + configDigest.substr(7), 'f', configJson});
  files.push_back({"blobs/sha256/" + manifestDigest.substr(7), 'f', manifest});
  json index = {{"schemaVersion", 2},
                {"manifests",
                 {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"digest", manifestDigest},
                   {"size", manifest.size()},
                   {"annotations", {{"org.opencontainers.image.ref.name", name}}}}}}};
  files.push_back({"index.json", 'f', index.dump()});
  return files;
}

Status writeOciArchive(const std::string& out, const std::vector<std::string>& layerTars,
                       const RunConfig& config, const std::string& name) {
  std::vector<std::string> layers;
  for (const std::string& tar : layerTars) {
    auto data = readFile(tar);
    if (!data) return Error(data.error());
    layers.push_back(std::move(*data));
  }
  return writeTar(out, ociLayout(layers, config, name));
}

}  // namespace agora::images