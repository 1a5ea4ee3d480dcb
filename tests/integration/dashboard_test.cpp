// The dashboards in a real browser (headless Chromium): the master's view of the cluster and the
// kube framework's, reached the way `agora dashboard --url` says, each loading with nothing on
// its console. Screenshots of both are left
// in <build>/test-artifacts/ for a person to look at.

#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/http_tokens.hpp"
#include "common/tls.hpp"
#include "tests/support/kube_cluster.hpp"

namespace agora::testing {
namespace {

using json = nlohmann::json;

std::string artifacts() {
  std::string binary = AGORA_BINARY;                            // <build>/bin/agora
  std::string build = binary.substr(0, binary.rfind("/bin/"));  // <build>
  std::string dir = build + "/test-artifacts";
  EXPECT_TRUE(makeDirectories(dir).ok());
  return dir;
}

struct Page {
  std::string dom;      // what the page's script rendered
  std::string console;  // what it wrote to the console (errors, uncaught exceptions): nothing
};

// Loads `url` in headless Chromium, runs its scripts for `budgetMs` of virtual time, and gives
// the DOM it ended with and its console (saving a screenshot to `screenshot` too).
Page browse(const std::string& url, const std::string& screenshot, int budgetMs = 5000) {
  TempDir profile;
  std::vector<std::string> common = {
      "/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
      "--no-first-run", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--ignore-certificate-errors", "--hide-scrollbars",
      "--user-data-dir=" + profile.path(), "--virtual-time-budget=" + std::to_string(budgetMs)};
  std::vector<std::string> shot = common;
  shot.insert(shot.end(), {"--window-size=1280,1400", "--screenshot=" + screenshot, url});
  runCommand(shot, seconds(90));
  std::vector<std::string> dump = common;
  dump.insert(dump.end(), {"--enable-logging=stderr", "--v=0", "--dump-dom", url});
  std::string out = runCommand(dump, seconds(90)).output;
  Page page;
  // Chromium logs each console message as a line with ":CONSOLE".
  for (size_t at = out.find(":CONSOLE"); at != std::string::npos;
       at = out.find(":CONSOLE", at + 1)) {
    page.console += out.substr(at, out.find('\n', at) - at) + "\n";
  }
  // The page's own script is in the DOM too: only what it rendered, before it, counts.
  size_t body = out.find("<body");
  size_t script = out.find("<script", body);
  page.dom = body == std::string::npos ? out : out.substr(body, script - body);
  return page;
}

TEST(DashboardTest, TheMasterAndKubeViewsShowTheClusterInABrowser) {
  if (!pathExists("/usr/bin/chromium")) {
    GTEST_FAIL() << "chromium is not installed (scripts/install-deps installs it)";
  }
  KubeCluster k(2, "cpus:2;mem:2048");
  REQUIRE_CLUSTER(k);
  json deployment = {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", {{"name", "greeter"}}},
      {"spec",
       {{"replicas", 2},
        {"selector", {{"matchLabels", {{"app", "greeter"}}}}},
        {"template",
         {{"metadata", {{"labels", {{"app", "greeter"}}}}},
          {"spec",
           {{"containers",
             {{{"name", "main"},
               {"image", "agora/host"},
               {"command", {"/bin/sh", "-c", "echo greetings; exec sleep 600"}},  // ok: the pod's pace
               {"resources", {{"requests", {{"cpu", "250m"}, {"memory", "64Mi"}}}}}}}}}}}}}}};
  std::string file = k.home() + "/greeter.json";
  ASSERT_TRUE(writeFileAtomic(file, deployment.dump()).ok());
  ASSERT_EQ(k.kubectl({"apply", "-f", file}).exitCode, 0);
  ASSERT_EQ(k.kubectl({"rollout", "status", "deployment/greeter", "--timeout=60s"}).exitCode, 0);

  // agora dashboard --url: the master's page, which reads its JSON and keeps reading it.
  auto url = k.agora({"dashboard", "--url"});
  ASSERT_EQ(url.exitCode, 0) << url.output;
  std::string master = url.output.substr(0, url.output.find('\n'));
  ASSERT_EQ(master.rfind("https://", 0), 0u) << master;
  // The profile's master requires a token: the address carries the operator's. Its HTTPS
  // certificate is the profile CA's.
  size_t fragment = master.find("#token=");
  ASSERT_NE(fragment, std::string::npos) << master;
  struct Forget {
    ~Forget() {
      setDefaultBearerToken("");
      setDefaultHttpTls(std::nullopt);
    }
  } forget;
  setDefaultBearerToken(master.substr(fragment + 7));
  auto ca = readFile(k.home() + "/profiles/default/credentials/http-ca.crt");
  ASSERT_TRUE(ca.ok()) << ca.error();
  setDefaultHttpTls(TlsClientConfig{*ca, "", ""});
  std::string dir = artifacts();
  Page loaded = browse(master, dir + "/dashboard-master.png");
  EXPECT_EQ(loaded.console, "");
  std::string page = loaded.dom;
  EXPECT_NE(page.find("data-loaded=\"true\""), std::string::npos) << page.substr(0, 2000);
  size_t refreshes = page.find("data-refreshes=\"");
  ASSERT_NE(refreshes, std::string::npos);
  EXPECT_GE(std::atoi(page.c_str() + refreshes + 16), 2) << "the page does not keep refreshing";
  auto agents = k.agora({"agents"});
  for (const char* suffix : {"-agent-1", "-agent-2"}) {
    size_t at = agents.output.find(suffix);
    ASSERT_NE(at, std::string::npos) << agents.output;
    size_t start = agents.output.rfind(' ', at) + 1;
    std::string host = agents.output.substr(start, agents.output.find(' ', at) - start);
    EXPECT_NE(page.find("<td>" + host + "</td>"), std::string::npos) << host;
  }
  EXPECT_NE(page.find("TASK_RUNNING"), std::string::npos);
  EXPECT_NE(page.find("<td>kube</td>"), std::string::npos);  // the role and the framework
  EXPECT_NE(page.find("<polyline"), std::string::npos);      // the utilisation chart
  EXPECT_NE(page.find("/dashboard/\">open</a>"), std::string::npos);  // the kube view's link
  EXPECT_TRUE(pathExists(dir + "/dashboard-master.png"));
  // The page's paths and the rest: every other path is still not found.
  std::string address = master.substr(8, master.find('/', 8) - 8);
  EXPECT_EQ(httpGet(address, "/no-such-page")->status, 404);
  auto history = httpGet(address, "/dashboard/history");
  ASSERT_TRUE(history.ok());
  EXPECT_NE(history->body.find("\"samples\""), std::string::npos);

  // agora dashboard --url --kube: the kube view, its token after '#'.
  auto kubeUrl = k.agora({"dashboard", "--url", "--kube"});
  ASSERT_EQ(kubeUrl.exitCode, 0) << kubeUrl.output;
  std::string kube = kubeUrl.output.substr(0, kubeUrl.output.find('\n'));
  ASSERT_NE(kube.find("/dashboard/#token="), std::string::npos) << kube;
  loaded = browse(kube, dir + "/dashboard-kube.png");
  EXPECT_EQ(loaded.console, "");
  page = loaded.dom;
  EXPECT_NE(page.find("data-loaded=\"true\""), std::string::npos) << page.substr(0, 2000);
  EXPECT_NE(page.find("<td>greeter</td>"), std::string::npos);
  EXPECT_NE(page.find(">complete<"), std::string::npos);          // its rollout
  EXPECT_NE(page.find("<td>greeter-"), std::string::npos);         // its pods
  EXPECT_NE(page.find("ScalingReplicaSet"), std::string::npos);    // the events
  EXPECT_TRUE(pathExists(dir + "/dashboard-kube.png"));
  // Without the token, the page asks for one and shows nothing of the cluster.
  page = browse(kube.substr(0, kube.find('#')), dir + "/dashboard-kube-no-token.png", 2000).dom;
  EXPECT_EQ(page.find("<td>greeter</td>"), std::string::npos);
}

}  // namespace
}  // namespace agora::testing
