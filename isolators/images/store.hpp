#pragma once

// The local image store: OCI images (and `docker save` archives) imported from files, kept as
// unpacked layers that containers mount read-only (overlayfs), content-addressed by the digest
// of each layer's uncompressed tar (its diff id). One store per machine serves every agent on
// it (`--image_store`); `agora image import / list / rm / build-rootfs` manage it.
//
//   <store>/layers/<diff id>/        a layer's tree, whiteouts in overlayfs's form (0:0 device
//                                    nodes, trusted.overlay.opaque on opaque directories)
//   <store>/images/<config digest>.json   an image: its names, layers (lowest first), config
//   <store>/tmp/                     imports in progress (nothing outside it is written until an
//                                    import has been checked whole)
//
// Unpacking is careful: a path with `..`, one that goes through a symlink, a hard link out of
// the layer, or a relative symlink that climbs above the root is refused; device nodes are not
// made; setuid and setgid bits are dropped. Importing needs root (files keep their owners).

#include <string>
#include <vector>

#include "common/result.hpp"
#include "isolators/images/archive.hpp"
#include "common/time.hpp"

namespace agora::images {

// What the image says about running it (the OCI config's `config`).
struct RunConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "NAME=value"
  std::string workingDir;
  std::string user;
  std::vector<std::string> exposedPorts;  // "80/tcp"
};

struct Image {
  std::string id;                   // "sha256:<hex>" of its config
  std::vector<std::string> names;   // "repo:tag"
  std::vector<std::string> layers;  // diff ids ("sha256:<hex>"), lowest first
  RunConfig config;
  uint64_t size = 0;                // bytes of its layers, unpacked
  double imported = 0;              // seconds since the epoch
};

class Store {
 public:
  explicit Store(std::string dir) : dir_(std::move(dir)) {}

  // Imports an OCI image layout or a `docker save` tarball (optionally gzip'd). `name`
  // ("repo:tag") picks the image when the archive holds several and names it; without one the
  // archive's own names are used. An error names what is wrong; the store is left as it was.
  Result<Image> import(const std::string& tarball, const std::string& name = "");

  // Packs a directory tree as a single-layer image named `name`.
  Result<Image> buildFromDirectory(const std::string& directory, const std::string& name,
                                   const RunConfig& config);

  Result<std::vector<Image>> list() const;
  // By name ("repo:tag"; "repo" means "repo:latest"), by id, or by an id's unique prefix.
  Result<Image> find(const std::string& reference) const;
  // Removes a name; the image (and layers no other image uses) go with its last name.
  Status remove(const std::string& reference);

  // Removes layers no image uses (left by an interrupted import or removal) and imports that
  // were abandoned more than `staleAfter` ago. Returns how many it removed.
  int collectGarbage(Duration staleAfter = hours(1));

  std::string layerPath(const std::string& diffId) const;
  const std::string& dir() const { return dir_; }

 private:
  Result<Image> importChecked(const std::string& tarball, const std::string& name);
  Result<Image> commit(Image image, const std::vector<std::string>& unpackedLayers);
  Result<Image> readImage(const std::string& path) const;
  Status writeImage(const Image& image) const;

  std::string dir_;
};

// "busybox" -> "busybox:latest"; an error for names that are not repo[:tag].
Result<std::string> normalizeName(const std::string& name);

// The files of an OCI image layout holding one image: its layers (uncompressed tars, lowest
// first, each of media type `layerType`), a config with `config`, named `name` in its index.
std::vector<TarEntry> ociLayout(const std::vector<std::string>& layers, const RunConfig& config,
                                const std::string& name,
                                const std::string& layerType =
                                    "application/vnd.oci.image.layer.v1.tar");

// That layout as a tarball at `out`, from layer tar files.
Status writeOciArchive(const std::string& out, const std::vector<std::string>& layerTars,
                       const RunConfig& config, const std::string& name);


}  // namespace agora::images
