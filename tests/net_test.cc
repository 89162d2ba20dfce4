#include "machineid/net.h"

#include <string>

#include <gtest/gtest.h>

namespace machineid {
namespace {

// "in", "out", or the error message.
std::string match(std::string_view address, std::string_view list) {
  auto r = address_in_list(address, list);
  if (!r.ok()) return r.error().message;
  return *r ? "in" : "out";
}

TEST(AddressInList, ExactIpv4AddressMatches) {
  EXPECT_EQ(match("192.0.2.7", "192.0.2.7"), "in");
  EXPECT_EQ(match("192.0.2.8", "192.0.2.7"), "out");
}

TEST(AddressInList, AnyEntryOfTheListMayMatch) {
  EXPECT_EQ(match("198.51.100.1", "192.0.2.7,198.51.100.0/24"), "in");
  EXPECT_EQ(match("203.0.113.1", "192.0.2.7,198.51.100.0/24"), "out");
}

TEST(AddressInList, Ipv4CidrBlockMatchesItsAddressesOnly) {
  EXPECT_EQ(match("10.1.2.3", "10.0.0.0/8"), "in");
  EXPECT_EQ(match("11.0.0.0", "10.0.0.0/8"), "out");
  EXPECT_EQ(match("192.168.1.129", "192.168.1.128/25"), "in");
  EXPECT_EQ(match("192.168.1.127", "192.168.1.128/25"), "out");
  EXPECT_EQ(match("255.255.255.255", "0.0.0.0/0"), "in");
  EXPECT_EQ(match("10.0.0.1", "10.0.0.1/32"), "in");
}

TEST(AddressInList, Ipv6AddressesAndBlocksMatch) {
  EXPECT_EQ(match("2001:db8::1", "2001:db8::1"), "in");
  EXPECT_EQ(match("2001:db8::1", "2001:DB8:0:0::1"), "in");
  EXPECT_EQ(match("2001:db8:ab:cd::5", "2001:db8:ab::/48"), "in");
  EXPECT_EQ(match("2001:db8:ac::5", "2001:db8:ab::/48"), "out");
  EXPECT_EQ(match("2001:db8::8001", "2001:db8::8000/113"), "in");
  EXPECT_EQ(match("2001:db8::7fff", "2001:db8::8000/113"), "out");
  EXPECT_EQ(match("::1", "::/0"), "in");
}

TEST(AddressInList, OtherFamilyNeverMatches) {
  EXPECT_EQ(match("10.0.0.1", "::/0"), "out");
  EXPECT_EQ(match("2001:db8::1", "0.0.0.0/0"), "out");
}

TEST(AddressInList, Ipv4MappedClientMatchesIpv4Entries) {
  EXPECT_EQ(match("::ffff:10.1.2.3", "10.0.0.0/8"), "in");
  EXPECT_EQ(match("::ffff:10.1.2.3", "10.1.2.3"), "in");
  EXPECT_EQ(match("::ffff:11.1.2.3", "10.0.0.0/8"), "out");
  // As sshd: the client is IPv4 after mapping, so IPv6 entries miss it.
  EXPECT_EQ(match("::ffff:10.1.2.3", "::ffff:10.1.2.3"), "out");
}

TEST(AddressInList, HostBitsSetBeyondThePrefixIsAnError) {
  EXPECT_EQ(match("10.0.0.1", "10.0.0.1/8"),
            "address list entry \"10.0.0.1/8\": host bits set beyond the prefix");
  EXPECT_EQ(match("2001:db8::1", "2001:db8::1/64"),
            "address list entry \"2001:db8::1/64\": host bits set beyond the prefix");
}

TEST(AddressInList, PrefixLengthBeyondTheFamilyIsAnError) {
  EXPECT_EQ(match("10.0.0.1", "10.0.0.0/33"),
            "address list entry \"10.0.0.0/33\": prefix length exceeds the address's bits");
  EXPECT_EQ(match("::1", "::/129"),
            "address list entry \"::/129\": prefix length exceeds the address's bits");
}

TEST(AddressInList, MalformedPrefixLengthIsAnError) {
  for (std::string_view entry :
       {"10.0.0.0/", "10.0.0.0/a", "10.0.0.0/1024", "10.0.0.0/8/8", "/8"}) {
    auto r = address_in_list("10.0.0.1", entry);
    ASSERT_FALSE(r.ok()) << entry;
    EXPECT_EQ(r.error().code, Errc::malformed);
  }
  EXPECT_EQ(match("10.0.0.0", "10.0.0.0/"),
            "address list entry \"10.0.0.0/\": invalid prefix length");
}

TEST(AddressInList, LeadingZerosInThePrefixLengthAreAccepted) {
  EXPECT_EQ(match("10.9.9.9", "10.0.0.0/08"), "in");
}

TEST(AddressInList, EmptyListOrEntryIsAnError) {
  EXPECT_EQ(match("10.0.0.1", ""), "address list entry \"\": empty");
  EXPECT_EQ(match("10.0.0.1", "10.0.0.1,"), "address list entry \"\": empty");
  EXPECT_EQ(match("10.0.0.1", ",10.0.0.1"), "address list entry \"\": empty");
  EXPECT_EQ(match("10.0.0.1", "10.0.0.1,,10.0.0.2"), "address list entry \"\": empty");
}

TEST(AddressInList, InvalidCharactersAreAnError) {
  EXPECT_EQ(match("10.0.0.1", "10.0.0.1, 10.0.0.2"),
            "address list entry \" 10.0.0.2\": invalid characters");
  EXPECT_EQ(match("10.0.0.1", "10.0.0.*"), "address list entry \"10.0.0.*\": invalid characters");
  EXPECT_EQ(match("10.0.0.1", "!10.0.0.1"), "address list entry \"!10.0.0.1\": invalid characters");
  EXPECT_EQ(match("10.0.0.1", "localhost"), "address list entry \"localhost\": invalid characters");
  EXPECT_EQ(match("10.0.0.1", std::string_view("10.0.0.1\0", 9)),
            "address list entry \"10.0.0.1?\": invalid characters");
}

TEST(AddressInList, OverlongEntryIsAnError) {
  std::string entry = "0000:0000:0000:0000:0000:0000:0000:0000:0000:0000/0";
  EXPECT_EQ(match("::1", entry), "address list entry \"" + entry + "\": too long");
}

TEST(AddressInList, ShorthandAddressesAreAnError) {
  EXPECT_EQ(match("10.0.0.1", "10.1"), "address list entry \"10.1\": invalid address");
  EXPECT_EQ(match("10.0.0.1", "010.0.0.1"), "address list entry \"010.0.0.1\": invalid address");
  EXPECT_EQ(match("10.0.0.1", "1.2.3.4.5"), "address list entry \"1.2.3.4.5\": invalid address");
}

TEST(AddressInList, BadEntryAfterAMatchIsStillAnError) {
  EXPECT_EQ(match("10.0.0.1", "10.0.0.1,10.0.0.1/8"),
            "address list entry \"10.0.0.1/8\": host bits set beyond the prefix");
}

TEST(AddressInList, MalformedClientAddressIsAnError) {
  EXPECT_EQ(match("10.0.0", "10.0.0.0/8"), "client address \"10.0.0\": invalid address");
  EXPECT_EQ(match("fe80::1%eth0", "fe80::/10"), "client address \"fe80::1%eth0\": invalid address");
  EXPECT_EQ(match("", "10.0.0.0/8"), "client address \"\": invalid address");
  EXPECT_EQ(match(std::string_view("10.0.0.1\0x", 10), "10.0.0.0/8"),
            "client address \"10.0.0.1?x\": invalid address");
}

}  // namespace
}  // namespace machineid
