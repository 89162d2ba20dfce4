// The Teleport identity a certificate carries in its extensions.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "machineid/cert.h"
#include "machineid/result.h"

namespace machineid {

// Extension names Teleport writes into user certificates.
inline constexpr std::string_view kExtRoles = "teleport-roles";
inline constexpr std::string_view kExtTraits = "teleport-traits";
inline constexpr std::string_view kExtRouteToCluster = "teleport-route-to-cluster";
inline constexpr std::string_view kExtImpersonator = "impersonator";
inline constexpr std::string_view kExtBotName = "bot-name@goteleport.com";
inline constexpr std::string_view kExtBotInstanceId = "bot-instance-id@goteleport.com";
inline constexpr std::string_view kExtMfaVerified = "mfa-verified";
inline constexpr std::string_view kExtDeviceId = "teleport-device-id";
inline constexpr std::string_view kExtActiveRequests = "teleport-active-requests";
inline constexpr std::string_view kExtJoinToken = "join-token@goteleport.com";

inline constexpr std::size_t kMaxRoles = 256;
inline constexpr std::size_t kMaxTraits = 256;
inline constexpr std::size_t kMaxTraitValues = 1024;

using Traits = std::map<std::string, std::vector<std::string>, std::less<>>;

struct Identity {
  std::string user;  // the certificate's key id
  std::vector<std::string> roles;
  Traits traits;
  std::optional<std::string> route_to_cluster;
  // For bot certificates (key id "bot-<name>" with an impersonator
  // extension equal to it, or a bot-name extension): the bot's name, from
  // bot-name or else the key id less "bot-".
  std::optional<std::string> bot;
  std::optional<std::string> bot_instance_id;
  // What else a lock may target: the MFA device that verified the session,
  // the trusted device, the join token, the access requests in use.
  std::optional<std::string> mfa_device, device_id, join_token;
  std::vector<std::string> access_requests;
};

// Reads roles (`{"version":"v1","roles":[...]}` or `{"roles":[...]}`),
// traits (a JSON object of string arrays, null for none), cluster route and
// bot markers; a missing extension leaves its field empty. A malformed
// extension is an error naming it (Errc::limit past kMaxRoles, kMaxTraits
// or kMaxTraitValues in all).
Result<Identity> read_identity(const Certificate& cert);

}  // namespace machineid
