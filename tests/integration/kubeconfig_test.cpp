// The kubeconfig entry `agora up` will write, read back by the real kubectl.

#include <gtest/gtest.h>

#include "common/fs.hpp"
#include "common/certs.hpp"
#include "frameworks/k8s-like/apiserver/kubeconfig.hpp"
#include "tests/support/process_cluster.hpp"

namespace agora::testing {
namespace {

std::string kubectl(const std::string& config, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"kubectl", "--kubeconfig=" + config};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.begin(), "/usr/bin/env");
  return runCommand(argv, seconds(20)).output;
}

TEST(KubeconfigTest, MergedBesideTheUsersOwnEntriesAndMadeCurrent) {
  if (runCommand({"/usr/bin/env", "kubectl", "version", "--client"}, seconds(20)).exitCode != 0) {
    GTEST_SKIP() << "no kubectl";
  }
  TempDir dir;
  std::string config = dir.path() + "/kube/config";
  // The user's own cluster, current.
  ASSERT_TRUE(makeDirectories(dir.path() + "/kube").ok());
  ASSERT_TRUE(writeFileAtomic(config,
                              "apiVersion: v1\nkind: Config\n"
                              "clusters:\n- name: other\n  cluster:\n    server: https://127.0.0.1:1\n"
                              "users:\n- name: other\n  user:\n    token: theirs\n"
                              "contexts:\n- name: other\n  context:\n    cluster: other\n"
                              "    user: other\ncurrent-context: other\n")
                  .ok());
  auto certs = makeCertificates({"127.0.0.1"});
  ASSERT_TRUE(certs.ok());
  kube::KubeconfigEntry entry;
  entry.server = "https://127.0.0.1:6443";
  entry.caPem = certs->caCert;
  entry.token = "first";
  ASSERT_TRUE(kube::mergeKubeconfig(config, entry).ok());
  entry.token = "second";  // merged again: replaced, not repeated
  ASSERT_TRUE(kube::mergeKubeconfig(config, entry).ok());

  EXPECT_EQ(kubectl(config, {"config", "current-context"}), "agora\n");
  EXPECT_EQ(kubectl(config, {"config", "get-contexts", "-o", "name"}), "agora\nother\n");  // sorted
  EXPECT_EQ(kubectl(config, {"config", "view", "--raw", "-o",
                             "jsonpath={.users[?(@.name==\"agora\")].user.token}"}),
            "second");
  EXPECT_EQ(kubectl(config, {"config", "view", "--raw", "-o",
                             "jsonpath={.clusters[?(@.name==\"agora\")].cluster.server}"}),
            "https://127.0.0.1:6443");
  EXPECT_EQ(kubectl(config, {"config", "view", "--raw", "-o",
                             "jsonpath={.users[?(@.name==\"other\")].user.token}"}),
            "theirs");

  // Taken out again: the user's own entry stays.
  ASSERT_TRUE(kube::removeFromKubeconfig(config, "agora").ok());
  EXPECT_EQ(kubectl(config, {"config", "get-contexts", "-o", "name"}), "other\n");
  // Not a kubeconfig: an error, and the file as it was.
  ASSERT_TRUE(writeFileAtomic(config, "- just\n- a list\n").ok());
  EXPECT_FALSE(kube::mergeKubeconfig(config, entry).ok());
  EXPECT_EQ(readFile(config).value_or(""), "- just\n- a list\n");
}

}  // namespace
}  // namespace agora::testing
