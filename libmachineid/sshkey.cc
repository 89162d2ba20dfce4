#include "machineid/sshkey.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <sodium.h>

#include <array>
#include <atomic>
#include <cstring>
#include <sstream>

#include "evp.h"
#include "machineid/encoding.h"

namespace machineid {
namespace {

constexpr std::size_t kEd25519KeyBytes = crypto_sign_PUBLICKEYBYTES;
constexpr std::size_t kEd25519SigBytes = crypto_sign_BYTES;

struct EcdsaCurve {
  std::string_view ssh_name;  // curve identifier inside the blob
  const char* openssl_group;
  std::size_t field_bytes;
  const EVP_MD* (*digest)();
};

const EcdsaCurve& curve_of(KeyType type) {
  static const EcdsaCurve p256{"nistp256", "prime256v1", 32, md_sha256};
  static const EcdsaCurve p384{"nistp384", "secp384r1", 48, md_sha384};
  static const EcdsaCurve p521{"nistp521", "secp521r1", 66, md_sha512};
  return type == KeyType::ecdsa_p256 ? p256 : type == KeyType::ecdsa_p384 ? p384 : p521;
}

bool is_ecdsa(KeyType type) {
  return type == KeyType::ecdsa_p256 || type == KeyType::ecdsa_p384 || type == KeyType::ecdsa_p521;
}

unsigned bit_length(Bytes magnitude) {
  if (magnitude.empty()) return 0;
  unsigned bits = static_cast<unsigned>(magnitude.size() - 1) * 8;
  for (std::uint8_t top = magnitude[0]; top != 0; top >>= 1) ++bits;
  return bits;
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

Error crypto_error(const std::string& what) { return make_error(Errc::crypto, what); }

// Builds an OpenSSL public key from parameters; nullptr when OpenSSL refuses.
Pkey pkey_from_params(const char* algorithm, OSSL_PARAM_BLD* bld) {
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld));
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, algorithm, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
    return nullptr;
  return Pkey(raw);
}

Result<Pkey> make_rsa(const PublicKey& key) {
  std::unique_ptr<BIGNUM, BnFree> n(BN_bin2bn(key.material.data(), static_cast<int>(key.material.size()), nullptr));
  std::unique_ptr<BIGNUM, BnFree> e(BN_bin2bn(key.exponent.data(), static_cast<int>(key.exponent.size()), nullptr));
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!n || !e || !bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1)
    return crypto_error("cannot build RSA key");
  Pkey pkey = pkey_from_params("RSA", bld.get());
  if (!pkey) return crypto_error("OpenSSL refuses the RSA key");
  return pkey;
}

Result<Pkey> make_ecdsa(const PublicKey& key) {
  const EcdsaCurve& curve = curve_of(key.type);
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, curve.openssl_group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, key.material.data(),
                                       key.material.size()) != 1)
    return crypto_error("cannot build ECDSA key");
  Pkey pkey = pkey_from_params("EC", bld.get());
  if (!pkey) return crypto_error("ECDSA point is not on curve " + std::string(curve.ssh_name));
  // Full public key validation: on the curve, not infinity, right order.
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (!ctx || EVP_PKEY_public_check(ctx.get()) != 1)
    return crypto_error("ECDSA public key fails validation on curve " + std::string(curve.ssh_name));
  return pkey;
}

using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;

// A verify context for one key and digest, set up once: EVP_PKEY_verify_init
// and the padding/digest parameters cost more than the RSA public operation
// itself (provider look-ups under a global lock). nullptr when OpenSSL refuses.
PkeyCtx prepare_verify(EVP_PKEY* pkey, const EVP_MD* md) {
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_signature_md(ctx.get(), md) != 1 ||
      (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA && EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1))
    return nullptr;
  return ctx;
}

// Prepared contexts for one digest, a few of them: an EVP_PKEY_CTX is not
// safe to use from two threads at once, and the daemon verifies on several.
// A caller takes a free one; when all are taken it prepares its own, which is
// only slower.
class PreparedVerify {
 public:
  PreparedVerify(EVP_PKEY* pkey, const EVP_MD* md) : pkey_(pkey), md_(md) {
    for (auto& slot : slots_) slot.ctx = prepare_verify(pkey, md);
  }

  // `sig` is in OpenSSL's encoding for the key type; `data` is hashed here.
  bool verify(Bytes sig, Bytes data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (EVP_Digest(data.data(), data.size(), digest, &digest_len, md_, nullptr) != 1) return false;
    for (auto& slot : slots_) {
      if (!slot.ctx || slot.busy.test_and_set(std::memory_order_acquire)) continue;
      bool ok = EVP_PKEY_verify(slot.ctx.get(), sig.data(), sig.size(), digest, digest_len) == 1;
      slot.busy.clear(std::memory_order_release);
      return ok;
    }
    PkeyCtx own = prepare_verify(pkey_, md_);
    return own && EVP_PKEY_verify(own.get(), sig.data(), sig.size(), digest, digest_len) == 1;
  }

 private:
  struct Slot {
    std::atomic_flag busy;
    PkeyCtx ctx;
  };
  static constexpr std::size_t kSlots = 4;  // the daemon's verifying threads, and some
  EVP_PKEY* pkey_;
  const EVP_MD* md_;
  std::array<Slot, kSlots> slots_;
};

// SSH's ECDSA signature (mpint r, mpint s) as the DER OpenSSL verifies.
Result<ByteVector> ecdsa_sig_to_der(Bytes ssh_sig, std::size_t field_bytes) {
  WireReader r(ssh_sig);
  MID_TRY(rb, r.mpint());
  MID_TRY(sb, r.mpint());
  MID_CHECK(r.expect_end("ECDSA signature"));
  if (rb.empty() || sb.empty() || rb.size() > field_bytes || sb.size() > field_bytes)
    return crypto_error("ECDSA signature values out of range");
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(ECDSA_SIG_new());
  BIGNUM* rn = BN_bin2bn(rb.data(), static_cast<int>(rb.size()), nullptr);
  BIGNUM* sn = BN_bin2bn(sb.data(), static_cast<int>(sb.size()), nullptr);
  if (!sig || !rn || !sn || ECDSA_SIG_set0(sig.get(), rn, sn) != 1) {
    BN_free(rn);
    BN_free(sn);
    return crypto_error("cannot build ECDSA signature");
  }
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return crypto_error("cannot encode ECDSA signature");
  ByteVector der(static_cast<std::size_t>(len));
  unsigned char* p = der.data();
  i2d_ECDSA_SIG(sig.get(), &p);
  return der;
}

}  // namespace

std::string_view key_type_name(KeyType type) {
  switch (type) {
    case KeyType::ed25519: return "ssh-ed25519";
    case KeyType::ecdsa_p256: return "ecdsa-sha2-nistp256";
    case KeyType::ecdsa_p384: return "ecdsa-sha2-nistp384";
    case KeyType::ecdsa_p521: return "ecdsa-sha2-nistp521";
    case KeyType::rsa: return "ssh-rsa";
  }
  return "unknown";
}

std::string_view key_type_label(KeyType type) {
  return type == KeyType::ed25519 ? "ED25519" : type == KeyType::rsa ? "RSA" : "ECDSA";
}

Result<KeyType> key_type_from_name(std::string_view name) {
  for (KeyType t : {KeyType::ed25519, KeyType::ecdsa_p256, KeyType::ecdsa_p384, KeyType::ecdsa_p521, KeyType::rsa})
    if (key_type_name(t) == name) return t;
  return make_error(Errc::unsupported, "unsupported key type '" + std::string(name) + "'");
}

std::string PublicKey::fingerprint() const { return fingerprint_sha256(blob); }

std::string PublicKey::to_text() const { return std::string(key_type_name(type)) + " " + base64_encode(blob); }

Result<PublicKey> read_key_fields(KeyType type, WireReader& r) {
  PublicKey key;
  key.type = type;
  WireWriter blob;
  blob.string(key_type_name(type));
  if (type == KeyType::ed25519) {
    MID_TRY(pk, r.string());
    if (pk.size() != kEd25519KeyBytes)
      return make_error(Errc::malformed, "Ed25519 key is " + std::to_string(pk.size()) + " bytes, not 32");
    key.material.assign(pk.begin(), pk.end());
    key.bits = 256;
    blob.string(pk);
  } else if (is_ecdsa(type)) {
    const EcdsaCurve& curve = curve_of(type);
    MID_TRY(curve_name, r.cstring());
    if (curve_name != curve.ssh_name)
      return make_error(Errc::malformed, "ECDSA curve '" + std::string(curve_name) + "' does not match key type " +
                                             std::string(key_type_name(type)));
    MID_TRY(point, r.string());
    // Uncompressed SEC1 point: 0x04 || X || Y.
    if (point.size() != 1 + 2 * curve.field_bytes || point[0] != 0x04)
      return make_error(Errc::malformed, "ECDSA point is not an uncompressed " + std::string(curve.ssh_name) + " point");
    key.material.assign(point.begin(), point.end());
    key.bits = type == KeyType::ecdsa_p256 ? 256 : type == KeyType::ecdsa_p384 ? 384 : 521;
    blob.string(curve.ssh_name).string(point);
  } else {
    MID_TRY(e, r.mpint());
    MID_TRY(n, r.mpint());
    key.bits = bit_length(n);
    if (key.bits < kMinRsaBits || key.bits > kMaxRsaBits)
      return make_error(Errc::unsupported, "RSA modulus of " + std::to_string(key.bits) + " bits is outside " +
                                               std::to_string(kMinRsaBits) + ".." + std::to_string(kMaxRsaBits));
    if (e.empty() || (e.back() & 1) == 0) return make_error(Errc::malformed, "RSA exponent is not odd");
    key.material.assign(n.begin(), n.end());
    key.exponent.assign(e.begin(), e.end());
    blob.mpint(e).mpint(n);
  }
  key.blob = blob.take();
  return key;
}

Result<PublicKey> parse_public_key(Bytes blob) {
  WireReader r(blob);
  MID_TRY(name, r.cstring());
  if (name.find("-cert-v01@openssh.com") != std::string_view::npos)
    return make_error(Errc::unsupported, "'" + std::string(name) + "' is a certificate, not a plain key");
  MID_TRY(type, key_type_from_name(name));
  MID_TRY(key, read_key_fields(type, r));
  MID_CHECK(r.expect_end("public key"));
  return key;
}

Result<PublicKey> parse_public_key_text(std::string_view line) {
  std::istringstream in{std::string(line)};
  std::string type, b64;
  if (!(in >> type >> b64)) return make_error(Errc::malformed, "expected 'type base64 [comment]'");
  MID_TRY(blob, base64_decode(b64));
  MID_TRY(key, parse_public_key(blob));
  if (key_type_name(key.type) != type)
    return make_error(Errc::malformed, "key text says '" + type + "' but the blob holds " +
                                           std::string(key_type_name(key.type)));
  return key;
}

struct Verifier::Impl {
  Pkey pkey;  // RSA and ECDSA; Ed25519 goes through libsodium
  // ECDSA: the curve's digest. RSA: rsa-sha2-256 and rsa-sha2-512.
  std::unique_ptr<PreparedVerify> sha256, sha512, curve_digest;
};

Result<Verifier> Verifier::create(const PublicKey& key) {
  // libsodium must be initialised once before use; repeated calls are cheap.
  if (sodium_init() < 0) return crypto_error("libsodium failed to initialise");
  auto impl = std::make_shared<Impl>();
  if (key.type == KeyType::rsa) {
    MID_TRY(pkey, make_rsa(key));
    impl->pkey = std::move(pkey);
    impl->sha256 = std::make_unique<PreparedVerify>(impl->pkey.get(), md_sha256());
    impl->sha512 = std::make_unique<PreparedVerify>(impl->pkey.get(), md_sha512());
  } else if (is_ecdsa(key.type)) {
    MID_TRY(pkey, make_ecdsa(key));
    impl->pkey = std::move(pkey);
    impl->curve_digest = std::make_unique<PreparedVerify>(impl->pkey.get(), curve_of(key.type).digest());
  }
  Verifier v;
  v.key_ = key;
  v.impl_ = std::move(impl);
  return v;
}

Status Verifier::verify(Bytes signature, Bytes data) const {
  WireReader r(signature);
  MID_TRY(algorithm, r.cstring());
  MID_TRY(sig, r.string());
  MID_CHECK(r.expect_end("signature"));
  const std::string alg(algorithm);

  if (key_.type == KeyType::ed25519) {
    if (alg != "ssh-ed25519") return crypto_error("signature algorithm " + alg + " does not fit an Ed25519 key");
    if (sig.size() != kEd25519SigBytes) return crypto_error("Ed25519 signature is not 64 bytes");
    if (crypto_sign_verify_detached(sig.data(), data.data(), data.size(), key_.material.data()) != 0)
      return crypto_error("Ed25519 signature does not verify");
    return {};
  }
  if (is_ecdsa(key_.type)) {
    if (alg != key_type_name(key_.type))
      return crypto_error("signature algorithm " + alg + " does not fit an " + std::string(key_type_name(key_.type)) + " key");
    const EcdsaCurve& curve = curve_of(key_.type);
    MID_TRY(der, ecdsa_sig_to_der(sig, curve.field_bytes));
    if (!impl_->curve_digest->verify(der, data)) return crypto_error("ECDSA signature does not verify");
    return {};
  }
  PreparedVerify* prepared = nullptr;
  if (alg == "rsa-sha2-256") {
    prepared = impl_->sha256.get();
  } else if (alg == "rsa-sha2-512") {
    prepared = impl_->sha512.get();
  } else if (alg == "ssh-rsa") {
    return crypto_error("SHA-1 RSA signatures (ssh-rsa) are refused");
  } else {
    return crypto_error("signature algorithm " + alg + " does not fit an RSA key");
  }
  // OpenSSH may strip leading zeros; OpenSSL wants the modulus length.
  std::size_t modulus_bytes = key_.material.size();
  if (sig.size() > modulus_bytes) return crypto_error("RSA signature is longer than the modulus");
  ByteVector padded(modulus_bytes - sig.size(), 0);
  padded.insert(padded.end(), sig.begin(), sig.end());
  if (!prepared->verify(padded, data)) return crypto_error("RSA signature does not verify");
  return {};
}

}  // namespace machineid
