#include "machineid/krl.h"

#include <sys/mman.h>
#include <unistd.h>

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

// Sorts a list and drops repeats, in place: the list was reserved to its
// exact size, and a second copy is what loading must not hold.
template <typename T>
void sort_unique(std::vector<T>& list) {
  if (!std::is_sorted(list.begin(), list.end())) std::sort(list.begin(), list.end());
  list.erase(std::unique(list.begin(), list.end()), list.end());
}

// Whether sorted `list` holds `value`, for lists of byte strings.
bool holds(const std::vector<ByteVector>& list, Bytes value) {
  auto it = std::lower_bound(list.begin(), list.end(), value, [](const ByteVector& a, Bytes b) {
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end());
  });
  return it != list.end() && std::equal(it->begin(), it->end(), value.begin(), value.end());
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
  // How many entries each list will hold, counted by the parser's first pass.
  struct Counts {
    std::size_t serials = 0, ranges = 0, bitmaps = 0, key_ids = 0;
  };

  ByteVector ca;  // canonical CA key blob; empty for the section covering any CA
  // Sorted once normalize() has run, ranges and bitmaps by `first` and
  // disjoint, so a serial is found with one binary search in each.
  std::vector<std::uint64_t> serials;  // from serial lists: 8 bytes each
  std::vector<Range> ranges;
  std::vector<Bitmap> bitmaps;
  std::vector<std::string> key_ids;

  void reserve(const Counts& n) {
    serials.reserve(n.serials);
    ranges.reserve(n.ranges);
    bitmaps.reserve(n.bitmaps);
    key_ids.reserve(n.key_ids);
  }

  // Sorts and merges overlapping entries (several sections may name one CA),
  // each list in place.
  void normalize() {
    sort_unique(serials);
    sort_unique(key_ids);

    auto by_first = [](const auto& a, const auto& b) { return a.first < b.first; };
    std::sort(ranges.begin(), ranges.end(), by_first);
    std::size_t kept = 0;
    for (const Range& r : ranges) {
      if (kept > 0 && r.first <= ranges[kept - 1].last)
        ranges[kept - 1].last = std::max(ranges[kept - 1].last, r.last);
      else
        ranges[kept++] = r;
    }
    ranges.resize(kept);

    std::sort(bitmaps.begin(), bitmaps.end(), by_first);
    kept = 0;
    for (Bitmap& b : bitmaps) {
      if (kept == 0 || b.first > bitmaps[kept - 1].last()) {
        if (&b != &bitmaps[kept]) bitmaps[kept] = std::move(b);
        ++kept;
        continue;
      }
      // Overlapping bitmaps are ORed; the union spans no more bits than the
      // inputs together, so memory stays bounded by the KRL's size.
      Bitmap& into = bitmaps[kept - 1];
      std::size_t shift = b.first - into.first;
      into.bits.resize(std::max(into.bits.size(), shift + b.bits.size()));
      for (std::size_t i = 0; i < b.bits.size(); ++i)
        if (b.bits[i]) into.bits[shift + i] = true;
    }
    bitmaps.resize(kept);
  }

  bool serial_revoked(std::uint64_t serial) const {
    if (std::binary_search(serials.begin(), serials.end(), serial)) return true;
    auto after = [](std::uint64_t s, const auto& entry) { return s < entry.first; };
    auto r = std::upper_bound(ranges.begin(), ranges.end(), serial, after);
    if (r != ranges.begin() && serial <= std::prev(r)->last) return true;
    auto b = std::upper_bound(bitmaps.begin(), bitmaps.end(), serial, after);
    if (b == bitmaps.begin()) return false;
    const Bitmap& bitmap = *std::prev(b);
    return serial <= bitmap.last() && bitmap.bits[serial - bitmap.first];
  }

  bool key_id_revoked(const std::string& id) const {
    return std::binary_search(key_ids.begin(), key_ids.end(), id);
  }
};

// Reads a KRL into a Krl, in two passes over the file: the first checks all
// of it and counts what each list will hold, the second fills lists reserved
// to exactly that. A list grown as it is read would, while growing, hold up
// to twice its entries at once, beside the KRL in force. Every reader it
// makes spans the whole file up to the end of the structure being read, so
// error offsets count from the start of the file and nothing can read past
// the structure.
struct Krl::Parser {
  Bytes file;
  Krl krl;
  bool filling = false;  // the second pass
  // Set when the parser may drop the file's bytes (load() read them for it):
  // the second pass, which only moves forward, gives their pages back as it
  // leaves them behind. A reload then holds the KRL in force, the new lists
  // and what is left of the file, never the file whole beside both.
  bool may_drop_file = false;
  std::uintptr_t dropped_to = 0;  // page boundary up to which pages were given back
  bool after_signature = false;
  // Sections naming one CA merge, as in OpenSSH.
  std::map<ByteVector, CertSection::Counts> counts;
  std::map<ByteVector, CertSection> by_ca;
  std::size_t explicit_keys = 0, sha1_hashes = 0, sha256_hashes = 0;

  explicit Parser(Bytes data) : file(data) {}

  // Gives back the whole pages of the file before `offset`, in steps of at
  // least 64 KiB (one system call each). Pages read as zeros afterwards, and
  // nothing reads them again: the passes read forward only.
  void leave_behind(std::size_t offset) {
    if (!may_drop_file || !filling) return;
    static const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
    auto start = reinterpret_cast<std::uintptr_t>(file.data());
    std::uintptr_t from = std::max(dropped_to, (start + page - 1) / page * page);
    std::uintptr_t to = (start + offset) / page * page;
    if (to < from + 64 * 1024) return;
    (void)madvise(reinterpret_cast<void*>(from), to - from, MADV_DONTNEED);  // only memory, if it fails
    dropped_to = to;
  }

  WireReader reader_for(Bytes part) const {
    auto start = static_cast<std::size_t>(part.data() - file.data());
    WireReader r(file.first(start + part.size()));
    (void)r.raw(start);  // cannot fail: `part` lies within `file`
    return r;
  }

  Result<Krl> run() {
    MID_CHECK(pass());
    filling = true;
    for (const auto& [ca, n] : counts) {
      CertSection& section = by_ca[ca];
      section.ca = ca;
      section.reserve(n);
    }
    krl.explicit_keys_.reserve(explicit_keys);
    krl.sha1_hashes_.reserve(sha1_hashes);
    krl.sha256_hashes_.reserve(sha256_hashes);
    MID_CHECK(pass());  // the same bytes the first pass accepted
    krl.cert_sections_.reserve(by_ca.size());
    for (auto& entry : by_ca) {
      entry.second.normalize();
      krl.cert_sections_.push_back(std::move(entry.second));
    }
    sort_unique(krl.explicit_keys_);
    sort_unique(krl.sha1_hashes_);
    sort_unique(krl.sha256_hashes_);
    return std::move(krl);
  }

  Status pass() {
    after_signature = false;
    WireReader r(file);
    if (Status s = header(r); !s) return within("KRL header", s.error());
    while (!r.empty()) {
      MID_TRY(type, r.u8());
      if (Status s = section(type, r); !s)
        return within("KRL section " + std::to_string(type) + " (" + section_name(type) + ")",
                      s.error());
      leave_behind(r.offset());
    }
    return {};
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
        while (!s.empty()) {
          MID_TRY(blob, s.string());
          if (filling)
            krl.explicit_keys_.emplace_back(blob.begin(), blob.end());
          else
            ++explicit_keys;
          leave_behind(s.offset());
        }
        return {};
      case kSha1Fingerprints:
        return hashes(s, krl.sha1_hashes_, sha1_hashes);
      case kSha256Fingerprints:
        return hashes(s, krl.sha256_hashes_, sha256_hashes);
      case kExtension:
        return parse_extension(s);
    }
    return bad(Errc::unsupported, start, "unknown section type");
  }

  template <std::size_t N>
  Status hashes(WireReader& r, std::vector<std::array<std::uint8_t, N>>& into, std::size_t& count) {
    while (!r.empty()) {
      std::size_t start = r.offset();
      MID_TRY(blob, r.string());
      if (blob.size() != N)
        return bad(Errc::malformed, start,
                   "hash of " + std::to_string(blob.size()) + " bytes, expected " + std::to_string(N));
      if (filling)
        std::copy(blob.begin(), blob.end(), into.emplace_back().begin());
      else
        ++count;
      leave_behind(r.offset());
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
    CertSection::Counts& n = counts[ca];
    CertSection* into = filling ? &by_ca[ca] : nullptr;
    while (!r.empty()) {
      MID_TRY(type, r.u8());
      MID_TRY(body, r.string());
      WireReader s = reader_for(body);
      if (Status st = cert_subsection(type, s, n, into); !st)
        return within("subsection 0x" + hex(Bytes(&type, 1)) + " (" + subsection_name(type) + ")",
                      st.error());
    }
    return {};
  }

  // Checks one subsection and counts its entries in `n` or, when filling,
  // adds them to `into`.
  Status cert_subsection(std::uint8_t type, WireReader& r, CertSection::Counts& n, CertSection* into) {
    std::size_t start = r.offset();
    switch (type) {
      case kSerialList:
        while (!r.empty()) {
          std::size_t at = r.offset();
          MID_TRY(serial, r.u64());
          MID_CHECK(check_not_zero(serial, at));
          if (into)
            into->serials.push_back(serial);
          else
            ++n.serials;
          leave_behind(r.offset());
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
        if (into)
          into->ranges.push_back({first, last});
        else
          ++n.ranges;
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
        if (bitmap.back() & 1) MID_CHECK(check_not_zero(first, start));
        if (!into) {
          ++n.bitmaps;
          return {};
        }
        CertSection::Bitmap& b = into->bitmaps.emplace_back(CertSection::Bitmap{first, std::vector<bool>(nbits)});
        for (std::size_t i = 0; i < nbits; ++i)
          b.bits[i] = (bitmap[bitmap.size() - 1 - i / 8] >> (i % 8)) & 1;
        return {};
      }
      case kKeyIds:
        while (!r.empty()) {
          MID_TRY(id, r.cstring());
          if (into)
            into->key_ids.emplace_back(id);
          else
            ++n.key_ids;
          leave_behind(r.offset());
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
  Parser parser(as_bytes(content));  // within the limit: read_file checked it
  parser.may_drop_file = true;       // `content` is ours and read once
  auto krl = parser.run();
  if (!krl.ok()) return with_context(krl.error(), path);
  return krl;
}

const char* Krl::how_revoked(Bytes key_blob) const {
  // Hash only for the sections this KRL has: this runs on every decision.
  if (!explicit_keys_.empty() && holds(explicit_keys_, key_blob)) return "as an explicit key";
  if (!sha1_hashes_.empty() && std::binary_search(sha1_hashes_.begin(), sha1_hashes_.end(), sha1(key_blob)))
    return "by SHA-1 fingerprint";
  if (!sha256_hashes_.empty() &&
      std::binary_search(sha256_hashes_.begin(), sha256_hashes_.end(), sha256(key_blob)))
    return "by SHA-256 fingerprint";
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
  if (it->key_id_revoked(cert.key_id)) {
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
