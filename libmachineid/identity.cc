// The Teleport identity in a certificate's extensions.
#include "machineid/identity.h"

#include <cctype>
#include <cstdint>

#include "machineid/encoding.h"

namespace machineid {
namespace {

constexpr std::string_view kBotKeyIdPrefix = "bot-";
// Nesting an unknown member may have before it is refused.
constexpr int kMaxJsonDepth = 16;

Error extension_error(std::string_view extension, Errc code, const std::string& what) {
  return make_error(code, "extension " + std::string(extension) + ": " + what);
}

// A strict, streaming reader of the small JSON objects Teleport writes into
// certificate extensions: no document is built, strings are the only values
// kept. Every method returns false on malformed input.
class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : t_(text) {}

  bool eat(char c) {
    skip();
    if (p_ < t_.size() && t_[p_] == c) {
      ++p_;
      return true;
    }
    return false;
  }
  bool at_end() {
    skip();
    return p_ == t_.size();
  }
  bool null() {
    skip();
    if (t_.substr(p_, 4) != "null") return false;
    p_ += 4;
    return true;
  }

  // A JSON string, with its escapes; invalid UTF-8 and raw control
  // characters are malformed.
  bool string(std::string& out) {
    out.clear();
    if (!eat('"')) return false;
    while (p_ < t_.size()) {
      unsigned char c = static_cast<unsigned char>(t_[p_++]);
      if (c == '"') return true;
      if (c < 0x20) return false;
      if (c != '\\') {
        if (c >= 0x80 && !utf8_tail(c, out)) return false;
        if (c < 0x80) out += static_cast<char>(c);
        continue;
      }
      if (p_ >= t_.size()) return false;
      char e = t_[p_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          std::uint32_t cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00) {  // a surrogate pair
            std::uint32_t low = 0;
            if (t_.substr(p_, 2) != "\\u") return false;
            p_ += 2;
            if (!hex4(low) || low < 0xDC00 || low >= 0xE000) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            return false;
          }
          append_utf8(out, cp);
          break;
        }
        default: return false;
      }
    }
    return false;
  }

  // Any JSON value, read and dropped.
  bool skip_value(int depth = 0) {
    if (depth > kMaxJsonDepth) return false;
    skip();
    if (p_ >= t_.size()) return false;
    std::string scratch;
    char c = t_[p_];
    if (c == '"') return string(scratch);
    if (c == '{' || c == '[') {
      ++p_;
      char close = c == '{' ? '}' : ']';
      if (eat(close)) return true;
      do {
        if (c == '{' && !(string(scratch) && eat(':'))) return false;
        if (!skip_value(depth + 1)) return false;
      } while (eat(','));
      return eat(close);
    }
    std::size_t start = p_;
    while (p_ < t_.size() && (std::isalnum(static_cast<unsigned char>(t_[p_])) || t_[p_] == '-' || t_[p_] == '+' ||
                              t_[p_] == '.'))
      ++p_;
    std::string_view word = t_.substr(start, p_ - start);
    if (word == "true" || word == "false" || word == "null") return true;
    return !word.empty() && (std::isdigit(static_cast<unsigned char>(word[0])) || word[0] == '-');
  }

 private:
  void skip() {
    while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\t' || t_[p_] == '\n' || t_[p_] == '\r')) ++p_;
  }
  bool hex4(std::uint32_t& out) {
    if (p_ + 4 > t_.size()) return false;
    for (int i = 0; i < 4; ++i) {
      char h = t_[p_++];
      int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
      if (d < 0) return false;
      out = out * 16 + static_cast<std::uint32_t>(d);
    }
    return true;
  }
  // Copies a UTF-8 sequence whose lead byte `lead` was just read.
  bool utf8_tail(unsigned char lead, std::string& out) {
    int n = lead >= 0xF0 && lead <= 0xF4 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC2 && lead < 0xE0 ? 1 : -1;
    if (n < 0 || p_ + static_cast<std::size_t>(n) > t_.size()) return false;
    out += static_cast<char>(lead);
    for (int i = 0; i < n; ++i) {
      unsigned char c = static_cast<unsigned char>(t_[p_++]);
      if ((c & 0xC0) != 0x80) return false;
      out += static_cast<char>(c);
    }
    return true;
  }
  std::string_view t_;
  std::size_t p_ = 0;
};

// A JSON array of strings (null for none), at most `max` of them in all.
Result<void> string_list(JsonReader& r, std::string_view extension, const std::string& what, std::size_t max,
                         std::size_t& total, std::vector<std::string>& out) {
  auto malformed = [&] { return extension_error(extension, Errc::malformed, what + " must be a list of strings"); };
  if (r.null()) return {};
  if (!r.eat('[')) return malformed();
  if (r.eat(']')) return {};
  do {
    std::string item;
    if (!r.string(item)) return malformed();
    if (++total > max) return extension_error(extension, Errc::limit, "more than " + std::to_string(max) + " " + what);
    out.push_back(std::move(item));
  } while (r.eat(','));
  if (!r.eat(']')) return malformed();
  return {};
}

// An object of members, each handed to `member` (which reads its value);
// nothing may follow it.
template <class Member>
Status json_object(std::string_view extension, const std::string& text, Member member) {
  JsonReader r(text);
  auto malformed = [&] { return extension_error(extension, Errc::malformed, "not a valid JSON object"); };
  if (!r.eat('{')) return malformed();
  if (!r.eat('}')) {
    do {
      std::string key;
      if (!r.string(key) || !r.eat(':')) return malformed();
      MID_CHECK(member(key, r));
    } while (r.eat(','));
    if (!r.eat('}')) return malformed();
  }
  if (!r.at_end()) return malformed();
  return {};
}

// `{"version":"v1","roles":[...]}` or `{"roles":[...]}`, as Teleport writes it.
Result<std::vector<std::string>> read_roles(const std::string& text) {
  std::vector<std::string> roles;
  bool have_roles = false;
  std::size_t total = 0;
  MID_CHECK(json_object(kExtRoles, text, [&](const std::string& key, JsonReader& r) -> Status {
    if (key == "version") {
      std::string version;
      if (!r.string(version)) return extension_error(kExtRoles, Errc::malformed, "\"version\" must be a string");
      if (version != "v1") return extension_error(kExtRoles, Errc::unsupported, "unsupported version \"" + version + "\"");
      return {};
    }
    if (key != "roles") {
      if (!r.skip_value()) return extension_error(kExtRoles, Errc::malformed, "not a valid JSON object");
      return {};
    }
    have_roles = true;
    roles.clear();
    total = 0;
    if (r.null()) return extension_error(kExtRoles, Errc::malformed, "\"roles\" must be a list of strings");
    return string_list(r, kExtRoles, "roles", kMaxRoles, total, roles);
  }));
  if (!have_roles) return extension_error(kExtRoles, Errc::malformed, "\"roles\" must be a list of strings");
  return roles;
}

// `{"access_requests":[...]}`, as Teleport writes the requests a
// certificate was issued under.
Result<std::vector<std::string>> read_access_requests(const std::string& text) {
  std::vector<std::string> out;
  std::size_t total = 0;
  MID_CHECK(json_object(kExtActiveRequests, text, [&](const std::string& key, JsonReader& r) -> Status {
    if (key != "access_requests") {
      if (!r.skip_value()) return extension_error(kExtActiveRequests, Errc::malformed, "not a valid JSON object");
      return {};
    }
    out.clear();
    total = 0;
    return string_list(r, kExtActiveRequests, "requests", kMaxRoles, total, out);
  }));
  return out;
}

// A JSON object of trait name -> list of strings (null for none).
Result<Traits> read_traits(const std::string& text) {
  Traits traits;
  std::size_t total = 0;
  MID_CHECK(json_object(kExtTraits, text, [&](const std::string& name, JsonReader& r) -> Status {
    std::vector<std::string>& values = traits[name];
    if (traits.size() > kMaxTraits)
      return extension_error(kExtTraits, Errc::limit, "more than " + std::to_string(kMaxTraits) + " traits");
    values.clear();
    return string_list(r, kExtTraits, "trait values in all", kMaxTraitValues, total, values);
  }));
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
