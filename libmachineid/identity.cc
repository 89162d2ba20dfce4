// The Teleport identity in a certificate's extensions.
#include "machineid/identity.h"

#include <nlohmann/json.hpp>

namespace machineid {
namespace {

using nlohmann::json;

constexpr std::string_view kBotKeyIdPrefix = "bot-";

Error extension_error(std::string_view extension, Errc code, const std::string& what) {
  return make_error(code, "extension " + std::string(extension) + ": " + what);
}

Result<json> parse_json(std::string_view extension, const std::string& text) {
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return extension_error(extension, Errc::malformed, "not valid JSON");
  return value;
}

// `{"version":"v1","roles":[...]}` or `{"roles":[...]}`, as Teleport writes it.
Result<std::vector<std::string>> read_roles(const std::string& text) {
  MID_TRY(value, parse_json(kExtRoles, text));
  if (!value.is_object())
    return extension_error(kExtRoles, Errc::malformed, "must be a JSON object");
  if (auto version = value.find("version"); version != value.end() && *version != "v1")
    return extension_error(kExtRoles, Errc::unsupported, "unsupported version " + version->dump());
  auto roles = value.find("roles");
  if (roles == value.end() || !roles->is_array())
    return extension_error(kExtRoles, Errc::malformed, "\"roles\" must be a list of strings");
  if (roles->size() > kMaxRoles)
    return extension_error(kExtRoles, Errc::limit,
                           "more than " + std::to_string(kMaxRoles) + " roles");
  std::vector<std::string> out;
  for (const auto& role : *roles) {
    if (!role.is_string())
      return extension_error(kExtRoles, Errc::malformed, "\"roles\" must be a list of strings");
    out.push_back(role.get<std::string>());
  }
  return out;
}

// `{"access_requests":[...]}`, as Teleport writes the requests a
// certificate was issued under.
Result<std::vector<std::string>> read_access_requests(const std::string& text) {
  MID_TRY(value, parse_json(kExtActiveRequests, text));
  auto error = [] { return extension_error(kExtActiveRequests, Errc::malformed, "must be {\"access_requests\":[...]}"); };
  if (!value.is_object()) return error();
  std::vector<std::string> out;
  auto requests = value.find("access_requests");
  if (requests == value.end() || requests->is_null()) return out;
  if (!requests->is_array()) return error();
  if (requests->size() > kMaxRoles)
    return extension_error(kExtActiveRequests, Errc::limit, "more than " + std::to_string(kMaxRoles) + " requests");
  for (const auto& r : *requests) {
    if (!r.is_string()) return error();
    out.push_back(r.get<std::string>());
  }
  return out;
}

// A JSON object of trait name -> list of strings (null for none).
Result<Traits> read_traits(const std::string& text) {
  MID_TRY(value, parse_json(kExtTraits, text));
  if (!value.is_object())
    return extension_error(kExtTraits, Errc::malformed, "must be a JSON object");
  if (value.size() > kMaxTraits)
    return extension_error(kExtTraits, Errc::limit,
                           "more than " + std::to_string(kMaxTraits) + " traits");
  Traits traits;
  std::size_t total = 0;
  for (const auto& [name, values] : value.items()) {
    std::vector<std::string>& out = traits[name];
    if (values.is_null()) continue;
    if (!values.is_array())
      return extension_error(kExtTraits, Errc::malformed,
                             "trait \"" + name + "\" must be a list of strings");
    total += values.size();
    if (total > kMaxTraitValues)
      return extension_error(
          kExtTraits, Errc::limit,
          "more than " + std::to_string(kMaxTraitValues) + " trait values in all");
    for (const auto& v : values) {
      if (!v.is_string())
        return extension_error(kExtTraits, Errc::malformed,
                               "trait \"" + name + "\" must be a list of strings");
      out.push_back(v.get<std::string>());
    }
  }
  return traits;
}

// The bot's name: the bot-name extension, or the key id less "bot-", or
// (when that leaves nothing) the key id.
std::optional<std::string> bot_name(const Certificate& cert) {
  std::string_view key_id = cert.key_id;
  bool bot_key_id = key_id.starts_with(kBotKeyIdPrefix) && key_id.size() > kBotKeyIdPrefix.size();
  std::string derived(bot_key_id ? key_id.substr(kBotKeyIdPrefix.size()) : key_id);
  if (const std::string* name = cert.extension(kExtBotName)) return name->empty() ? derived : *name;
  const std::string* impersonator = cert.extension(kExtImpersonator);
  if (bot_key_id && impersonator != nullptr && *impersonator == key_id) return derived;
  return std::nullopt;
}

}  // namespace

Result<Identity> read_identity(const Certificate& cert) {
  Identity id;
  id.user = cert.key_id;
  if (const std::string* roles = cert.extension(kExtRoles)) {
    MID_TRY(parsed, read_roles(*roles));
    id.roles = std::move(parsed);
  }
  if (const std::string* traits = cert.extension(kExtTraits)) {
    MID_TRY(parsed, read_traits(*traits));
    id.traits = std::move(parsed);
  }
  if (const std::string* cluster = cert.extension(kExtRouteToCluster))
    id.route_to_cluster = *cluster;
  id.bot = bot_name(cert);
  auto optional_extension = [&](std::string_view name, std::optional<std::string>& out) {
    if (const std::string* value = cert.extension(name); value != nullptr && !value->empty()) out = *value;
  };
  optional_extension(kExtBotInstanceId, id.bot_instance_id);
  optional_extension(kExtMfaVerified, id.mfa_device);
  optional_extension(kExtDeviceId, id.device_id);
  optional_extension(kExtJoinToken, id.join_token);
  if (const std::string* requests = cert.extension(kExtActiveRequests)) {
    MID_TRY(parsed, read_access_requests(*requests));
    id.access_requests = std::move(parsed);
  }
  return id;
}

}  // namespace machineid
