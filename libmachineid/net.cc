#include "machineid/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace machineid {
namespace {

// An IPv4 address lives in the first 4 bytes.
struct Address {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};
  unsigned bits() const { return v6 ? 128 : 32; }
};

// OpenSSH refuses longer list entries before parsing them: the longest
// IPv6 text form plus "/" and a three-digit prefix length.
constexpr std::size_t kMaxEntryLength = INET6_ADDRSTRLEN + 3;

// Names the offending text, cut short as OpenSSH's messages are and with
// unprintable bytes as '?', since it comes from a certificate and ends in logs.
Error bad(std::string_view what, std::string_view text, std::string_view why) {
  std::string shown(text.substr(0, 100));
  for (char& c : shown)
    if (c < ' ' || c > '~') c = '?';
  return make_error(Errc::malformed, std::string(what) + " \"" + shown + "\": " + std::string(why));
}

// Strict numeric forms only (inet_pton): no "10.1" shorthands, no zone ids.
// An embedded NUL would end the text inet_pton sees early, so it fails here.
bool parse_address(std::string_view text, Address& out) {
  std::string s(text);
  if (s.size() >= INET6_ADDRSTRLEN || s.find('\0') != std::string::npos) return false;
  if (inet_pton(AF_INET, s.c_str(), out.bytes.data()) == 1) {
    out.v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), out.bytes.data()) == 1) {
    out.v6 = true;
    return true;
  }
  return false;
}

// Whether the first `prefix` bits of a and b agree.
bool same_prefix(const Address& a, const Address& b, unsigned prefix) {
  unsigned whole = prefix / 8;
  if (!std::equal(a.bytes.begin(), a.bytes.begin() + whole, b.bytes.begin())) return false;
  unsigned rest = prefix % 8;
  if (rest == 0) return true;
  auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a.bytes[whole] & mask) == (b.bytes[whole] & mask);
}

bool host_bits_zero(const Address& a, unsigned prefix) {
  for (unsigned bit = prefix; bit < a.bits(); ++bit)
    if (a.bytes[bit / 8] & (0x80 >> (bit % 8))) return false;
  return true;
}

struct Network {
  Address address;
  unsigned prefix = 0;
};

// One entry as addr_match_cidr_list takes it: an address, or an address and
// a decimal prefix length within its family whose host bits are all zero.
Result<Network> parse_entry(std::string_view entry) {
  constexpr std::string_view what = "address list entry";
  if (entry.empty()) return bad(what, entry, "empty");
  if (entry.size() > kMaxEntryLength) return bad(what, entry, "too long");
  if (entry.find_first_not_of("0123456789abcdefABCDEF.:/") != std::string_view::npos)
    return bad(what, entry, "invalid characters");
  Network net;
  std::string_view address = entry;
  std::optional<unsigned> prefix;
  if (auto slash = entry.find('/'); slash != std::string_view::npos) {
    address = entry.substr(0, slash);
    std::string_view digits = entry.substr(slash + 1);
    if (digits.empty() || digits.size() > 3 ||
        digits.find_first_not_of("0123456789") != std::string_view::npos)
      return bad(what, entry, "invalid prefix length");
    prefix = static_cast<unsigned>(std::stoul(std::string(digits)));
  }
  if (!parse_address(address, net.address)) return bad(what, entry, "invalid address");
  net.prefix = prefix.value_or(net.address.bits());
  if (net.prefix > net.address.bits())
    return bad(what, entry, "prefix length exceeds the address's bits");
  if (!host_bits_zero(net.address, net.prefix))
    return bad(what, entry, "host bits set beyond the prefix");
  return net;
}

}  // namespace

Result<bool> address_in_list(std::string_view address, std::string_view list) {
  Address client;
  if (!parse_address(address, client)) return bad("client address", address, "invalid address");
  // sshd matches an IPv4 client that reached an IPv6 socket by its IPv4
  // address (::ffff:a.b.c.d becomes a.b.c.d), so IPv4 entries apply to it.
  static constexpr std::array<std::uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0,    0,
                                                                 0, 0, 0, 0, 0xff, 0xff};
  if (client.v6 && std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), client.bytes.begin())) {
    std::copy_n(client.bytes.begin() + 12, 4, client.bytes.begin());
    std::fill(client.bytes.begin() + 4, client.bytes.end(), 0);
    client.v6 = false;
  }
  // Every entry is checked, even after a match, so a bad list never passes.
  bool found = false;
  for (std::size_t start = 0;;) {
    std::size_t comma = list.find(',', start);
    std::string_view entry =
        list.substr(start, comma == std::string_view::npos ? comma : comma - start);
    MID_TRY(net, parse_entry(entry));
    if (net.address.v6 == client.v6 && same_prefix(client, net.address, net.prefix)) found = true;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return found;
}

}  // namespace machineid
