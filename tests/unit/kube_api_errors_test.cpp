#include <sys/stat.h>

#include <gtest/gtest.h>

#include "common/fs.hpp"
#include "common/certs.hpp"
#include "frameworks/k8s-like/apiserver/status.hpp"
#include "tests/support/temp_dir.hpp"
#include "frameworks/k8s-like/apiserver/validation.hpp"

namespace agora::kube {
namespace {

using nlohmann::json;

TEST(KubeApiErrorsTest, StatusObjectsAreWordedAsKubernetesWordsThem) {
  json status = notFound("pods", "web").toStatus();
  EXPECT_EQ(status["kind"], "Status");
  EXPECT_EQ(status["status"], "Failure");
  EXPECT_EQ(status["code"], 404);
  EXPECT_EQ(status["reason"], "NotFound");
  EXPECT_EQ(status["message"], "pods \"web\" not found");
  EXPECT_EQ(status["details"]["name"], "web");
  EXPECT_EQ(status["details"]["kind"], "pods");
  EXPECT_EQ(alreadyExists("deployments", "api").toStatus()["code"], 409);
  EXPECT_NE(conflict("pods", "web").message.find("the object has been modified"),
            std::string::npos);
  EXPECT_EQ(gone("too old resource version: 3 (9)").toStatus()["code"], 410);

  ApiError bad = invalid("Pod", "Web", {{"metadata.name", "Web", "must be lower case"}});
  EXPECT_EQ(bad.code, 422);
  EXPECT_EQ(bad.message,
            "Pod \"Web\" is invalid: metadata.name: Invalid value: \"Web\": must be lower case");
  json causes = bad.toStatus()["details"]["causes"];
  ASSERT_EQ(causes.size(), 1u);
  EXPECT_EQ(causes[0]["field"], "metadata.name");
  EXPECT_EQ(causes[0]["reason"], "FieldValueInvalid");
}

TEST(KubeApiErrorsTest, NamesAndLabelsAreValidatedAsKubernetesDoes) {
  EXPECT_FALSE(dns1123Subdomain("web-1.example").has_value());
  EXPECT_TRUE(dns1123Subdomain("Web").has_value());
  EXPECT_TRUE(dns1123Subdomain("-web").has_value());
  EXPECT_TRUE(dns1123Subdomain("web..x").has_value());
  EXPECT_TRUE(dns1123Subdomain(std::string(254, 'a')).has_value());
  EXPECT_FALSE(dns1123Label("default").has_value());
  EXPECT_TRUE(dns1123Label("a.b").has_value());
  EXPECT_TRUE(dns1123Label(std::string(64, 'a')).has_value());

  EXPECT_FALSE(labelKey("app").has_value());
  EXPECT_FALSE(labelKey("app.kubernetes.io/name").has_value());
  EXPECT_TRUE(labelKey("bad key").has_value());
  EXPECT_TRUE(labelKey("Example.com/x").has_value());
  EXPECT_FALSE(labelValue("").has_value());
  EXPECT_FALSE(labelValue("v1.2_beta-3").has_value());
  EXPECT_TRUE(labelValue("-v").has_value());

  auto causes = validateMetadata({{"name", "Web"}, {"labels", {{"app", "-x"}, {"ok", "y"}}}},
                                 false);
  ASSERT_EQ(causes.size(), 2u);
  EXPECT_EQ(causes[0].field, "metadata.name");
  EXPECT_EQ(causes[1].value, "-x");
  EXPECT_EQ(validateMetadata(json::object(), false)[0].type, "FieldValueRequired");
  EXPECT_TRUE(validateMetadata({{"name", "ok"}}, true).empty());
  EXPECT_TRUE(validateMetadata({{"generateName", "web-"}}, false).empty());
}

TEST(KubeCertificatesTest, ACaAndAServingCertificateForTheServersNames) {
  auto certs = makeCertificates({"127.0.0.1", "localhost"});
  ASSERT_TRUE(certs.ok()) << certs.error();
  EXPECT_NE(certs->caCert.find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_NE(certs->serverKey.find("PRIVATE KEY"), std::string::npos);
  EXPECT_TRUE(verifyCertificate(certs->caCert, certs->serverCert, "127.0.0.1").ok());
  EXPECT_TRUE(verifyCertificate(certs->caCert, certs->serverCert, "localhost").ok());
  EXPECT_FALSE(verifyCertificate(certs->caCert, certs->serverCert, "127.0.0.2").ok());
  auto other = makeCertificates({"127.0.0.1"});
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(verifyCertificate(other->caCert, certs->serverCert, "127.0.0.1").ok());

  // Made once in the data directory, then reused; made again for a new name.
  agora::testing::TempDir dir;
  auto first = loadOrMakeCertificates(dir.path() + "/tls", {"127.0.0.1"});
  ASSERT_TRUE(first.ok()) << first.error();
  struct stat st;
  ASSERT_EQ(::stat((dir.path() + "/tls/ca.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(loadOrMakeCertificates(dir.path() + "/tls", {"127.0.0.1"})->caCert, first->caCert);
  auto renamed = loadOrMakeCertificates(dir.path() + "/tls", {"127.0.0.1", "kube.local"});
  ASSERT_TRUE(renamed.ok());
  EXPECT_TRUE(verifyCertificate(renamed->caCert, renamed->serverCert, "kube.local").ok());
}

}  // namespace
}  // namespace agora::kube
