// agora image import / list / rm / build-rootfs: the machine's local image store, from which
// agents run containers with an image.

#include <iostream>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/daemon.hpp"
#include "cli/profile.hpp"
#include "cli/table.hpp"
#include "isolators/images/store.hpp"

namespace agora::cli {

namespace {

std::vector<std::string> splitList(const std::string& text, char sep) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, sep)) out.push_back(item);
  return out;
}

std::string joinList(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const std::string& i : items) out += (out.empty() ? "" : sep) + i;
  return out;
}

std::string humanSize(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  std::ostringstream out;
  out.precision(v < 10 && u > 0 ? 2 : 0);
  out << std::fixed << v << " " << units[u];
  return out.str();
}

}  // namespace

std::string defaultImageStore() { return agoraHome() + "/images"; }

int imageCommand(int argc, const char* const* argv) {
  std::string store = defaultImageStore();
  std::string name;
  std::string entrypoint;
  std::string cmd;
  std::string env;
  std::string workdir;
  std::string user;
  Flags flags(
      "agora image import FILE.tar [--name=REPO:TAG] | list | rm NAME | build-rootfs DIR "
      "--name=REPO:TAG",
      "Manages this machine's image store, which every agent on it runs images from\n"
      "(--image_store; `agora up` uses " +
          defaultImageStore() +
          "). import: an OCI image layout or `docker save`\n"
          "tarball, every blob checked. build-rootfs: a directory tree as a one-layer image.");
  flags.add(&store, "store", "The image store directory.");
  flags.add(&name, "name", "The image's name, repo:tag (import: picks one of several too).");
  flags.add(&entrypoint, "entrypoint", "build-rootfs: the entrypoint, words separated by ','.");
  flags.add(&cmd, "cmd", "build-rootfs: the default arguments, separated by ','.");
  flags.add(&env, "env", "build-rootfs: environment, NAME=value separated by ','.");
  flags.add(&workdir, "workdir", "build-rootfs: the working directory.");
  flags.add(&user, "user", "build-rootfs: the user to run as.");
  std::vector<std::string> words;
  int rc = parseFlags(flags, argc, argv, &words);
  if (rc >= 0) return rc;
  images::Store images(store);
  std::string verb = words.empty() ? "list" : words[0];
  if (verb == "import" && words.size() == 2) {
    auto image = images.import(words[1], name);
    if (!image) {
      std::cerr << "agora image import: " << image.error() << "\n";
      return 1;
    }
    std::cout << "Imported " << (image->names.empty() ? image->id : joinList(image->names, ", "))
              << " (" << image->id.substr(0, 19) << ", " << image->layers.size() << " layers, "
              << humanSize(image->size) << ")\n";
    return 0;
  }
  if (verb == "build-rootfs" && words.size() == 2) {
    if (name.empty()) {
      std::cerr << "agora image build-rootfs: --name=REPO:TAG is required\n";
      return 2;
    }
    images::RunConfig config;
    config.entrypoint = splitList(entrypoint, ',');
    config.cmd = splitList(cmd, ',');
    config.env = splitList(env, ',');
    config.workingDir = workdir;
    config.user = user;
    auto image = images.buildFromDirectory(words[1], name, config);
    if (!image) {
      std::cerr << "agora image build-rootfs: " << image.error() << "\n";
      return 1;
    }
    std::cout << "Built " << joinList(image->names, ", ") << " from " << words[1] << " ("
              << image->id.substr(0, 19) << ", " << humanSize(image->size) << ")\n";
    return 0;
  }
  if (verb == "list" && words.size() <= 1) {
    auto all = images.list();
    if (!all) {
      std::cerr << "agora image list: " << all.error() << "\n";
      return 1;
    }
    Table table({"NAME", "ID", "LAYERS", "SIZE", "ENTRYPOINT", "CMD"});
    for (const images::Image& image : *all) {
      std::vector<std::string> names = image.names.empty() ? std::vector<std::string>{"<none>"}
                                                           : image.names;
      for (const std::string& n : names) {
        table.add({n, image.id.substr(7, 12), std::to_string(image.layers.size()),
                   humanSize(image.size), joinList(image.config.entrypoint, " "),
                   joinList(image.config.cmd, " ")});
      }
    }
    table.print(std::cout);
    return 0;
  }
  if (verb == "rm" && words.size() == 2) {
    if (Status removed = images.remove(words[1]); !removed) {
      std::cerr << "agora image rm: " << removed.error() << "\n";
      return 1;
    }
    std::cout << "Removed " << words[1] << "\n";
    return 0;
  }
  std::cerr << "agora image: usage: " << flags.help();
  return 2;
}

}  // namespace agora::cli
