// The full decision next to the bare signature check it must contain.
// Fixtures come from scripts/bench (ssh-keygen) in $MID_BENCH_DIR:
//   <kind>-ca.pub, <kind>-ca.pem (PKCS#8 public key, not for ed25519), <kind>-cert.pub
// for kind in ed25519, rsa2048, p256.
#include <benchmark/benchmark.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "machineid/decision.h"
#include "machineid/resources.h"
#include "machineid/io.h"

namespace {

using namespace machineid;

constexpr std::int64_t kNow = 1767227400;  // inside the fixtures' validity

// A realistic node: a few roles, some locks for others, a KRL.
constexpr const char* kPolicy = R"(
kind: role
version: v7
metadata: {name: ci}
spec:
  allow:
    logins: ['root', '{{internal.logins}}']
    node_labels: {env: prod, 'group': '^api-.*$'}
  deny:
    logins: [postgres]
---
kind: role
version: v7
metadata: {name: ops}
spec:
  allow:
    logins: [ops]
    node_labels: {'*': '*'}
---
kind: lock
version: v2
metadata: {name: l1}
spec:
  target: {user: bot-other}
---
kind: lock
version: v2
metadata: {name: l2}
spec:
  target: {role: contractors}
)";

std::string fixture(const std::string& name) {
  const char* dir = std::getenv("MID_BENCH_DIR");
  if (dir == nullptr) {
    std::fprintf(stderr, "decision_bench: set MID_BENCH_DIR (run it through make bench)\n");
    std::exit(2);
  }
  auto text = read_file(std::string(dir) + "/" + name, 1 << 20);
  if (!text.ok()) {
    std::fprintf(stderr, "decision_bench: %s\n", text.error().message.c_str());
    std::exit(2);
  }
  return *text;
}

struct Setup {
  NodePolicy np;
  ByteVector blob;
  Certificate cert;
  Bytes raw_signature;  // the signature bytes inside the signature blob
};

Setup make_setup(const std::string& kind) {
  Setup s;
  s.np.config.cluster.name = "example.teleport.sh";
  s.np.config.node.name = "api-1";
  s.np.config.node.labels = {{"env", "prod"}, {"group", "api-east"}};
  auto cas = CaSet::parse(fixture(kind + "-ca.pub"), kind + "-ca.pub", "");
  auto policy = parse_resources(kPolicy, "bench.yaml", s.np.policy);
  auto blob = certificate_blob_from_text(fixture(kind + "-cert.pub"));
  if (!cas.ok() || !policy.ok() || !blob.ok()) std::abort();
  s.np.cas = std::move(*cas);
  auto krl = Krl::load(std::string(std::getenv("MID_BENCH_DIR")) + "/revoked.krl");
  if (!krl.ok()) std::abort();
  s.np.krl = std::make_shared<const Krl>(std::move(*krl));
  s.blob = std::move(*blob);
  s.cert = *parse_certificate(s.blob);
  WireReader r(s.cert.signature);
  (void)r.cstring();
  s.raw_signature = *r.string();
  Decision d = decide(Request{s.blob, "root", std::nullopt, kNow, std::nullopt}, s.np);
  if (!d.allowed) {
    std::fprintf(stderr, "decision_bench: %s fixture denied: %s\n", kind.c_str(), d.detail.c_str());
    std::exit(2);
  }
  return s;
}

void BM_Decision(benchmark::State& state, const std::string& kind) {
  Setup s = make_setup(kind);
  for (auto _ : state) {
    Decision d = decide(Request{s.blob, "root", std::nullopt, kNow, std::nullopt}, s.np);
    benchmark::DoNotOptimize(d.allowed);
  }
}

void BM_RawEd25519(benchmark::State& state) {
  Setup s = make_setup("ed25519");
  if (sodium_init() < 0) std::abort();
  const PublicKey& ca = s.np.cas.keys().front().verifier.key();
  Bytes data = s.cert.signed_region();
  for (auto _ : state) {
    int rc = crypto_sign_verify_detached(s.raw_signature.data(), data.data(), data.size(), ca.material.data());
    benchmark::DoNotOptimize(rc);
  }
}

// OpenSSL with the CA key loaded once, as any careful caller would.
void BM_RawOpenSsl(benchmark::State& state, const std::string& kind) {
  Setup s = make_setup(kind);
  std::string pem = fixture(kind + "-ca.pem");
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr),
                                                           EVP_PKEY_free);
  if (!pkey) std::abort();
  ByteVector sig(s.raw_signature.begin(), s.raw_signature.end());
  // Digests fetched once, as the library does; OpenSSL 3 would otherwise
  // look them up on every call.
  std::unique_ptr<EVP_MD, decltype(&EVP_MD_free)> sha512(EVP_MD_fetch(nullptr, "SHA512", nullptr), EVP_MD_free);
  std::unique_ptr<EVP_MD, decltype(&EVP_MD_free)> sha256(EVP_MD_fetch(nullptr, "SHA256", nullptr), EVP_MD_free);
  const EVP_MD* md = sha512.get();
  if (kind == "p256") {
    // SSH's (mpint r, mpint s) as DER, converted once outside the loop.
    md = sha256.get();
    WireReader r(s.raw_signature);
    Bytes rb = *r.mpint(), sb = *r.mpint();
    ECDSA_SIG* es = ECDSA_SIG_new();
    ECDSA_SIG_set0(es, BN_bin2bn(rb.data(), static_cast<int>(rb.size()), nullptr),
                   BN_bin2bn(sb.data(), static_cast<int>(sb.size()), nullptr));
    sig.assign(static_cast<std::size_t>(i2d_ECDSA_SIG(es, nullptr)), 0);
    unsigned char* p = sig.data();
    i2d_ECDSA_SIG(es, &p);
    ECDSA_SIG_free(es);
  }
  Bytes data = s.cert.signed_region();
  for (auto _ : state) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    int ok = EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, pkey.get()) == 1 &&
             EVP_DigestVerify(ctx, sig.data(), sig.size(), data.data(), data.size()) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) state.SkipWithError("raw verify failed");
    benchmark::DoNotOptimize(ok);
  }
}

// The fastest RSA check a careful caller could write: the key's context
// prepared once (PKCS#1 v1.5, SHA-512), then per check one one-shot SHA-512
// of the signed bytes and one EVP_PKEY_verify of the digest.
void BM_RawRsaPrepared(benchmark::State& state) {
  Setup s = make_setup("rsa2048");
  std::string pem = fixture("rsa2048-ca.pem");
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr),
                                                           EVP_PKEY_free);
  if (!pkey) std::abort();
  std::unique_ptr<EVP_MD, decltype(&EVP_MD_free)> sha512(EVP_MD_fetch(nullptr, "SHA512", nullptr), EVP_MD_free);
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new(pkey.get(), nullptr),
                                                                  EVP_PKEY_CTX_free);
  if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1 ||
      EVP_PKEY_CTX_set_signature_md(ctx.get(), sha512.get()) != 1)
    std::abort();
  Bytes data = s.cert.signed_region();
  for (auto _ : state) {
    unsigned char digest[64];
    unsigned int len = 0;
    int ok = EVP_Digest(data.data(), data.size(), digest, &len, sha512.get(), nullptr) == 1 &&
             EVP_PKEY_verify(ctx.get(), s.raw_signature.data(), s.raw_signature.size(), digest, len) == 1;
    if (!ok) state.SkipWithError("prepared verify failed");
    benchmark::DoNotOptimize(ok);
  }
}

BENCHMARK(BM_RawEd25519)->Name("ed25519/raw_verify");
BENCHMARK_CAPTURE(BM_Decision, ed25519, std::string("ed25519"))->Name("ed25519/decision");
BENCHMARK_CAPTURE(BM_RawOpenSsl, rsa2048, std::string("rsa2048"))->Name("rsa2048/raw_verify");
BENCHMARK_CAPTURE(BM_Decision, rsa2048, std::string("rsa2048"))->Name("rsa2048/decision");
BENCHMARK(BM_RawRsaPrepared)->Name("rsa2048/raw_prepared");
BENCHMARK_CAPTURE(BM_RawOpenSsl, p256, std::string("p256"))->Name("p256/raw_verify");
BENCHMARK_CAPTURE(BM_Decision, p256, std::string("p256"))->Name("p256/decision");

}  // namespace

BENCHMARK_MAIN();
