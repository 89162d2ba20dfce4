#include "machineid/krl.h"

#include <algorithm>
#include <bit>
#include <iterator>
#include <limits>
#include <map>
#include <utility>

#include "machineid/encoding.h"
#include "machineid/io.h"
#include "machineid/sshkey.h"
#include "machineid/wire.h"

namespace machineid {
namespace {

// PROTOCOL.krl: "SSHKRL\n\0" and the only format version there is.
constexpr std::uint64_t kKrlMagic = 0x5353484b524c0a00;
constexpr std::uint32_t kKrlFormatVersion = 1;

enum SectionType : std::uint8_t {
  kCertificates = 1,
  kExplicitKeys = 2,
  kSha1Fingerprints = 3,
  kSignature = 4,
  kSha256Fingerprints = 5,
  kExtension = 255,
};

enum CertSubsectionType : std::uint8_t {
  kSerialList = 0x20,
  kSerialRange = 0x21,
  kSerialBitmap = 0x22,
  kKeyIds = 0x23,
  kCertExtension = 0x39,
};

constexpr std::size_t kSha1Bytes = 20;
constexpr std::size_t kSha256Bytes = 32;

std::string section_name(std::uint8_t type) {
  switch (type) {
    case kCertificates:
      return "certificates";
    case kExplicitKeys:
      return "explicit keys";
    case kSha1Fingerprints:
      return "SHA-1 fingerprints";
    case kSignature:
      return "signature";
    case kSha256Fingerprints:
      return "SHA-256 fingerprints";
    case kExtension:
      return "extension";
  }
  return "unknown";
}

std::string subsection_name(std::uint8_t type) {
  switch (type) {
    case kSerialList:
      return "serial list";
    case kSerialRange:
      return "serial range";
    case kSerialBitmap:
      return "serial bitmap";
    case kKeyIds:
      return "key ids";
    case kCertExtension:
      return "extension";
  }
  return "unknown";
}

Error bad(Errc code, std::size_t offset, const std::string& what) {
  return make_error(code, "at byte " + std::to_string(offset) + ": " + what);
}

// Prefixes an error with the structure it occurred in ("KRL section 1 (certificates)").
Error within(const std::string& where, const Error& e) {
  return make_error(e.code, where + " " + e.message);
}

Status expect_end(const WireReader& r) {
  if (!r.empty())
    return bad(Errc::malformed, r.offset(), std::to_string(r.remaining()) + " trailing bytes");
  return {};
}

// Serial 0 marks a certificate without a serial; OpenSSH refuses a KRL that
// revokes it, so we do too rather than accept what sshd would not load.
Status check_not_zero(std::uint64_t first, std::size_t offset) {
  if (first == 0) return bad(Errc::malformed, offset, "serial 0 cannot be revoked");
  return {};
}

// KRL_SECTION_EXTENSION and KRL_SECTION_CERT_EXTENSION: none is understood,
// so a critical one makes the KRL unusable and the others are skipped.
Status parse_extension(WireReader& r) {
  std::size_t start = r.offset();
  MID_TRY(name, r.cstring());
  MID_TRY(critical, r.boolean());
  MID_CHECK(r.string());  // contents
  MID_CHECK(expect_end(r));
  if (critical)
    return bad(Errc::unsupported, start,
               "unknown critical extension \"" + std::string(name) + "\"");
  return {};
}

}  // namespace

struct Krl::CertSection {
  struct Range {
    std::uint64_t first, last;  // inclusive
  };
  struct Bitmap {
    std::uint64_t first;     // serial of bits[0]
    std::vector<bool> bits;  // bits[i]: serial first + i is revoked; never empty
    std::uint64_t last() const { return first + (bits.size() - 1); }
  };

  ByteVector ca;  // canonical CA key blob; empty for the section covering any CA
  // Sorted by `first` and disjoint once normalize() has run, so a serial is
  // found with one binary search in each.
  std::vector<Range> ranges;  // serial lists and ranges
  std::vector<Bitmap> bitmaps;
  std::set<std::string, std::less<>> key_ids;

  // Sorts and merges overlapping entries (several sections may name one CA).
  void normalize() {
    auto by_first = [](const auto& a, const auto& b) { return a.first < b.first; };
    std::sort(ranges.begin(), ranges.end(), by_first);
    std::vector<Range> merged;
    for (const Range& r : ranges) {
      if (!merged.empty() && r.first <= merged.back().last)
        merged.back().last = std::max(merged.back().last, r.last);
      else
        merged.push_back(r);
    }
    ranges = std::move(merged);

    std::sort(bitmaps.begin(), bitmaps.end(), by_first);
    std::vector<Bitmap> joined;
    for (Bitmap& b : bitmaps) {
      if (joined.empty() || b.first > joined.back().last()) {
        joined.push_back(std::move(b));
        continue;
      }
      // Overlapping bitmaps are ORed; the union spans no more bits than the
      // inputs together, so memory stays bounded by the KRL's size.
      Bitmap& into = joined.back();
      std::size_t shift = b.first - into.first;
      into.bits.resize(std::max(into.bits.size(), shift + b.bits.size()));
      for (std::size_t i = 0; i < b.bits.size(); ++i)
        if (b.bits[i]) into.bits[shift + i] = true;
    }
    bitmaps = std::move(joined);
  }

  bool serial_revoked(std::uint64_t serial) const {
    auto after = [](std::uint64_t s, const auto& entry) { return s < entry.first; };
    auto r = std::upper_bound(ranges.begin(), ranges.end(), serial, after);
    if (r != ranges.begin() && serial <= std::prev(r)->last) return true;
    auto b = std::upper_bound(bitmaps.begin(), bitmaps.end(), serial, after);
    if (b == bitmaps.begin()) return false;
    const Bitmap& bitmap = *std::prev(b);
    return serial <= bitmap.last() && bitmap.bits[serial - bitmap.first];
  }
};

// Reads a KRL into a Krl. Every reader it makes spans the whole file up to
// the end of the structure being read, so error offsets count from the start
// of the file and nothing can read past the structure.
struct Krl::Parser {
  Bytes file;
  Krl krl;
  std::map<ByteVector, CertSection> by_ca;  // sections naming one CA merge, as in OpenSSH
  bool after_signature = false;

  explicit Parser(Bytes data) : file(data) {}

  WireReader reader_for(Bytes part) const {
    auto start = static_cast<std::size_t>(part.data() - file.data());
    WireReader r(file.first(start + part.size()));
    (void)r.raw(start);  // cannot fail: `part` lies within `file`
    return r;
  }

  Result<Krl> run() {
    WireReader r(file);
    if (Status s = header(r); !s) return within("KRL header", s.error());
    while (!r.empty()) {
      MID_TRY(type, r.u8());
      if (Status s = section(type, r); !s)
        return within("KRL section " + std::to_string(type) + " (" + section_name(type) + ")",
                      s.error());
    }
    for (auto& entry : by_ca) {
      entry.second.normalize();
      krl.cert_sections_.push_back(std::move(entry.second));
    }
    return std::move(krl);
  }

  Status header(WireReader& r) {
    MID_TRY(magic, r.u64());
    if (magic != kKrlMagic) return bad(Errc::malformed, 0, "bad magic, not an OpenSSH KRL");
    MID_TRY(format, r.u32());
    if (format != kKrlFormatVersion)
      return bad(Errc::unsupported, 8, "format version " + std::to_string(format) + ", expected 1");
    MID_TRY(version, r.u64());
    krl.version_ = version;
    MID_CHECK(r.u64());      // generated_date
    MID_CHECK(r.u64());      // flags: none are defined, OpenSSH ignores them
    MID_CHECK(r.string());   // reserved
    MID_CHECK(r.cstring());  // comment
    return {};
  }

  Status section(std::uint8_t type, WireReader& r) {
    std::size_t start = r.offset() - 1;
    if (after_signature && type != kSignature)
      return bad(Errc::malformed, start, "only signature sections may follow a signature section");
    if (type == kSignature) {
      // string signing key, string signature. KRL signatures are obsolete and
      // OpenSSH no longer verifies them; the file's integrity is the
      // administrator's, so they are skipped.
      after_signature = true;
      MID_CHECK(r.string());
      MID_CHECK(r.string());
      return {};
    }
    MID_TRY(body, r.string());
    WireReader s = reader_for(body);
    switch (type) {
      case kCertificates:
        return certificates(s);
      case kExplicitKeys:
        return blobs(s, krl.explicit_keys_, 0);
      case kSha1Fingerprints:
        return blobs(s, krl.sha1_hashes_, kSha1Bytes);
      case kSha256Fingerprints:
        return blobs(s, krl.sha256_hashes_, kSha256Bytes);
      case kExtension:
        return parse_extension(s);
    }
    return bad(Errc::unsupported, start, "unknown section type");
  }

  // Keys and hashes, one string each; `hash_bytes` is 0 for key blobs.
  static Status blobs(WireReader& r, std::set<ByteVector>& into, std::size_t hash_bytes) {
    while (!r.empty()) {
      std::size_t start = r.offset();
      MID_TRY(blob, r.string());
      if (hash_bytes != 0 && blob.size() != hash_bytes)
        return bad(Errc::malformed, start,
                   "hash of " + std::to_string(blob.size()) + " bytes, expected " +
                       std::to_string(hash_bytes));
      into.emplace(blob.begin(), blob.end());
    }
    return {};
  }

  // The CA key a certificates section applies to, in the form revoked()
  // compares: re-encoded when we can parse it, so that two encodings of one
  // key match as OpenSSH's key comparison matches them. A key type we do not
  // support is kept as it is: sshd loads such a KRL, and no certificate we
  // accept can have been signed by that key.
  static Result<ByteVector> ca_key(Bytes blob, std::size_t offset) {
    if (blob.empty()) return ByteVector{};
    auto key = parse_public_key(blob);
    if (key.ok()) return std::move(key->blob);
    if (key.error().code == Errc::unsupported) return ByteVector(blob.begin(), blob.end());
    return bad(key.error().code, offset, "CA key: " + key.error().message);
  }

  Status certificates(WireReader& r) {
    std::size_t ca_offset = r.offset();
    MID_TRY(ca_blob, r.string());
    MID_CHECK(r.string());  // reserved
    MID_TRY(ca, ca_key(ca_blob, ca_offset));
    CertSection& into = by_ca[ca];
    into.ca = std::move(ca);
    while (!r.empty()) {
      MID_TRY(type, r.u8());
      MID_TRY(body, r.string());
      WireReader s = reader_for(body);
      if (Status st = cert_subsection(type, s, into); !st)
        return within("subsection 0x" + hex(Bytes(&type, 1)) + " (" + subsection_name(type) + ")",
                      st.error());
    }
    return {};
  }

  static Status cert_subsection(std::uint8_t type, WireReader& r, CertSection& into) {
    std::size_t start = r.offset();
    switch (type) {
      case kSerialList:
        while (!r.empty()) {
          std::size_t at = r.offset();
          MID_TRY(serial, r.u64());
          MID_CHECK(check_not_zero(serial, at));
          into.ranges.push_back({serial, serial});
        }
        return {};
      case kSerialRange: {
        MID_TRY(first, r.u64());
        MID_TRY(last, r.u64());
        MID_CHECK(expect_end(r));
        MID_CHECK(check_not_zero(first, start));
        if (first > last)
          return bad(Errc::malformed, start,
                     "serial range " + std::to_string(first) + "-" + std::to_string(last) +
                         " has min > max");
        into.ranges.push_back({first, last});
        return {};
      }
      case kSerialBitmap: {
        MID_TRY(first, r.u64());
        // Bit i, counted from the least significant, revokes serial first + i.
        MID_TRY(bitmap, r.mpint());
        MID_CHECK(expect_end(r));
        if (bitmap.empty()) return {};
        std::size_t nbits =
            (bitmap.size() - 1) * 8 + static_cast<std::size_t>(std::bit_width(bitmap[0]));
        if (first > std::numeric_limits<std::uint64_t>::max() - (nbits - 1))
          return bad(Errc::malformed, start,
                     "bitmap of " + std::to_string(nbits) + " bits from serial " +
                         std::to_string(first) + " runs past the largest serial");
        CertSection::Bitmap b{first, std::vector<bool>(nbits)};
        for (std::size_t i = 0; i < nbits; ++i)
          b.bits[i] = (bitmap[bitmap.size() - 1 - i / 8] >> (i % 8)) & 1;
        if (b.bits[0]) MID_CHECK(check_not_zero(first, start));
        into.bitmaps.push_back(std::move(b));
        return {};
      }
      case kKeyIds:
        while (!r.empty()) {
          MID_TRY(id, r.cstring());
          into.key_ids.emplace(id);
        }
        return {};
      case kCertExtension:
        return parse_extension(r);
    }
    return bad(Errc::unsupported, start, "unknown certificate subsection type");
  }
};

Krl::Krl() = default;
Krl::~Krl() = default;
Krl::Krl(Krl&&) noexcept = default;
Krl& Krl::operator=(Krl&&) noexcept = default;

Result<Krl> Krl::parse(Bytes data) {
  if (data.size() > kMaxKrlBytes)
    return make_error(Errc::limit, "KRL of " + std::to_string(data.size()) +
                                       " bytes exceeds the limit of " +
                                       std::to_string(kMaxKrlBytes));
  return Parser(data).run();
}

Result<Krl> Krl::load(const std::string& path) {
  MID_TRY(content, read_file(path, kMaxKrlBytes));
  // sshd reads an empty RevokedKeys file as an empty list of keys, and an
  // empty file is how revocation files usually start: it revokes nothing.
  if (content.empty()) return Krl();
  auto krl = parse(as_bytes(content));
  if (!krl.ok()) return with_context(krl.error(), path);
  return krl;
}

const char* Krl::how_revoked(Bytes key_blob) const {
  // Hash only for the sections this KRL has: this runs on every decision.
  if (!explicit_keys_.empty() && explicit_keys_.contains(ByteVector(key_blob.begin(), key_blob.end())))
    return "as an explicit key";
  if (!sha1_hashes_.empty()) {
    Sha1Digest s1 = sha1(key_blob);
    if (sha1_hashes_.contains(ByteVector(s1.begin(), s1.end()))) return "by SHA-1 fingerprint";
  }
  if (!sha256_hashes_.empty()) {
    Sha256Digest s256 = sha256(key_blob);
    if (sha256_hashes_.contains(ByteVector(s256.begin(), s256.end()))) return "by SHA-256 fingerprint";
  }
  return nullptr;
}

std::optional<std::string> Krl::key_revoked(const PublicKey& key) const {
  if (const char* how = how_revoked(key.blob))
    return "key " + key.fingerprint() + " revoked " + how;
  return std::nullopt;
}

std::optional<std::string> Krl::revoked_under(Bytes ca, const Certificate& cert) const {
  auto it = std::lower_bound(
      cert_sections_.begin(), cert_sections_.end(), ca, [](const CertSection& s, Bytes key) {
        return std::lexicographical_compare(s.ca.begin(), s.ca.end(), key.begin(), key.end());
      });
  if (it == cert_sections_.end() || !std::equal(it->ca.begin(), it->ca.end(), ca.begin(), ca.end()))
    return std::nullopt;
  // Named only once revoked: hashing the CA key costs more than the lookups.
  auto by = [&] { return ca.empty() ? std::string("for any CA") : "by CA " + fingerprint_sha256(ca); };
  if (it->key_ids.contains(cert.key_id)) {
    // The key id comes from the certificate: escaped, so the reason stays
    // one printable line, as every other reason is.
    return "key id \"" + escape_untrusted(cert.key_id) + "\" revoked " + by();
  }
  // Serial 0 means "no serial" (OpenSSH ignores it here too).
  if (cert.serial != 0 && it->serial_revoked(cert.serial))
    return "serial " + std::to_string(cert.serial) + " revoked " + by();
  return std::nullopt;
}

// The order is OpenSSH's: the certified key, the sections for its CA and for
// any CA, then the CA key itself. The CA key is compared as the certificate
// carries it; CaSet only trusts certificates whose CA blob is canonical.
std::optional<std::string> Krl::revoked(const Certificate& cert) const {
  if (auto why = key_revoked(cert.key)) return why;
  if (auto why = revoked_under(cert.signature_key, cert)) return why;
  if (auto why = revoked_under({}, cert)) return why;
  if (const char* how = how_revoked(cert.signature_key))
    return "CA key " + fingerprint_sha256(cert.signature_key) + " revoked " + how;
  return std::nullopt;
}

}  // namespace machineid
