#include "common/certs.hpp"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>

#include "common/fs.hpp"

namespace agora {

namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

KeyPtr makeKey() {
  return KeyPtr(EVP_EC_gen("prime256v1"));
}

std::string pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

CertPtr readCert(const std::string& text) {
  BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  return CertPtr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

KeyPtr readKey(const std::string& text) {
  BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  return KeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

void addExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext != nullptr) {
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
}

CertPtr makeCert(EVP_PKEY* key, const std::string& commonName, X509* issuer, EVP_PKEY* issuerKey,
                 int validDays) {
  CertPtr cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(validDays) * 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("agora"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(commonName.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
  return cert;
}

std::string subjectAltNames(const std::vector<std::string>& names) {
  std::string san;
  for (const std::string& n : names) {
    in6_addr v6;
    in_addr v4;
    bool ip = ::inet_pton(AF_INET, n.c_str(), &v4) == 1 || ::inet_pton(AF_INET6, n.c_str(), &v6) == 1;
    san += (san.empty() ? "" : ",") + std::string(ip ? "IP:" : "DNS:") + n;
  }
  return san;
}

// Signs a certificate for `key` with the CA's key.
Result<std::string> signCertificate(EVP_PKEY* key, const std::string& commonName, X509* ca,
                                    EVP_PKEY* caKey, CertificateUse use,
                                    const std::vector<std::string>& names, int validDays) {
  CertPtr cert = makeCert(key, commonName, ca, caKey, validDays);
  addExtension(cert.get(), ca, NID_basic_constraints, "critical,CA:FALSE");
  if (use == CertificateUse::kServer) {
    addExtension(cert.get(), ca, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    addExtension(cert.get(), ca, NID_ext_key_usage, "serverAuth");
    if (std::string san = subjectAltNames(names); !san.empty()) {
      addExtension(cert.get(), ca, NID_subject_alt_name, san);
    }
  } else {
    addExtension(cert.get(), ca, NID_key_usage, "critical,digitalSignature");
    addExtension(cert.get(), ca, NID_ext_key_usage, "clientAuth");
  }
  if (X509_sign(cert.get(), caKey, EVP_sha256()) == 0) {
    return Error("cannot sign the certificate of '" + commonName + "'");
  }
  return pem(cert.get());
}

}  // namespace

Result<Certificates> makeCertificates(const std::vector<std::string>& names, int validDays,
                                      const std::string& serverName) {
  KeyPtr caKey = makeKey();
  KeyPtr serverKey = makeKey();
  if (!caKey || !serverKey) return Error("cannot make keys");
  // A name of its own: a client looking for another cluster's CA by name must not find it.
  unsigned char tag[4];
  RAND_bytes(tag, sizeof(tag));
  char name[32];
  std::snprintf(name, sizeof(name), "agora-ca-%02x%02x%02x%02x", tag[0], tag[1], tag[2], tag[3]);
  CertPtr ca = makeCert(caKey.get(), name, nullptr, nullptr, validDays * 10);
  addExtension(ca.get(), ca.get(), NID_basic_constraints, "critical,CA:TRUE");
  addExtension(ca.get(), ca.get(), NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
  addExtension(ca.get(), ca.get(), NID_subject_key_identifier, "hash");
  if (X509_sign(ca.get(), caKey.get(), EVP_sha256()) == 0) return Error("cannot sign the CA");
  auto server = signCertificate(serverKey.get(), serverName, ca.get(), caKey.get(),
                                CertificateUse::kServer, names, validDays);
  if (!server) return Error(server.error());
  return Certificates{pem(ca.get()), pem(caKey.get()), *server, pem(serverKey.get())};
}

Result<std::pair<std::string, std::string>> issueCertificate(const std::string& caCert,
                                                             const std::string& caKey,
                                                             const std::string& commonName,
                                                             CertificateUse use,
                                                             const std::vector<std::string>& names,
                                                             int validDays) {
  CertPtr ca = readCert(caCert);
  KeyPtr signer = readKey(caKey);
  if (!ca || !signer) return Error("the CA's certificate or key is not PEM");
  KeyPtr key = makeKey();
  if (!key) return Error("cannot make a key");
  auto cert = signCertificate(key.get(), commonName, ca.get(), signer.get(), use, names,
                              validDays);
  if (!cert) return Error(cert.error());
  return std::make_pair(*cert, pem(key.get()));
}

Status verifyCertificate(const std::string& caCert, const std::string& serverCert,
                         const std::string& name) {
  CertPtr ca = readCert(caCert);
  CertPtr server = readCert(serverCert);
  if (!ca || !server) return Error("not PEM certificates");
  std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>> store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca.get());
  std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>> ctx(
      X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), server.get(), nullptr);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  in_addr v4;
  in6_addr v6;
  if (::inet_pton(AF_INET, name.c_str(), &v4) == 1 || ::inet_pton(AF_INET6, name.c_str(), &v6) == 1) {
    X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
  } else {
    X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    return Error(std::string("certificate does not verify: ") +
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get())));
  }
  return ok();
}

Result<Certificates> loadOrMakeCertificates(const std::string& dir,
                                            const std::vector<std::string>& names) {
  Certificates existing{readFile(dir + "/ca.crt").value_or(""), readFile(dir + "/ca.key").value_or(""),
                        readFile(dir + "/server.crt").value_or(""),
                        readFile(dir + "/server.key").value_or("")};
  bool usable = !existing.caCert.empty() && readKey(existing.caKey) && readKey(existing.serverKey);
  for (const std::string& n : names) {
    usable = usable && verifyCertificate(existing.caCert, existing.serverCert, n).ok();
  }
  if (usable) return existing;
  auto made = makeCertificates(names);
  if (!made) return Error(made.error());
  if (Status s = makeDirectories(dir); !s) return Error(s.error());
  for (const auto& [file, content] :
       {std::pair{"ca.crt", made->caCert}, {"ca.key", made->caKey},
        {"server.crt", made->serverCert}, {"server.key", made->serverKey}}) {
    std::string path = dir + "/" + file;
    mode_t mode = std::string(file).ends_with(".key") ? 0600 : 0644;
    if (Status s = writeFileAtomic(path, content, mode); !s) return Error(s.error());
  }
  return made;
}

}  // namespace agora
