#include "machineid/sync_state.h"

#include <unistd.h>

#include <cerrno>

#include <nlohmann/json.hpp>

#include "machineid/io.h"
#include "machineid/node_policy.h"

namespace machineid {
namespace {

using json = nlohmann::json;

template <class T>
bool read_optional(const json& j, const char* key, std::optional<T>& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return true;
  if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string()) return false;
  } else {
    if (!it->is_number_integer()) return false;
  }
  out = it->get<T>();
  return true;
}

}  // namespace

Result<SyncState> parse_sync_state(std::string_view text, std::string_view source) {
  auto bad = [&](const std::string& why) { return make_error(Errc::malformed, std::string(source) + ": " + why); };
  if (text.size() > kMaxSyncStateBytes) return bad("larger than " + std::to_string(kMaxSyncStateBytes) + " bytes");
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  auto sources = j.find("sources");
  if (sources == j.end() || !sources->is_object()) return bad("no \"sources\" object");
  SyncState state;
  for (const auto& [name, s] : sources->items()) {
    if (!s.is_object()) return bad("sources." + name + " is not an object");
    SyncSource out;
    std::optional<std::string> url, etag, last_modified;
    std::optional<std::int64_t> failures;
    bool ok = read_optional(s, "url", url) && read_optional(s, "last_attempt", out.last_attempt) &&
              read_optional(s, "last_success", out.last_success) &&
              read_optional(s, "last_change", out.last_change) && read_optional(s, "last_error", out.last_error) &&
              read_optional(s, "failures", failures) && read_optional(s, "etag", etag) &&
              read_optional(s, "last_modified", last_modified) && read_optional(s, "signed_at", out.signed_at);
    if (!ok || (failures && *failures < 0)) return bad("sources." + name + " has a field of the wrong type");
    out.url = url.value_or("");
    out.etag = etag.value_or("");
    out.last_modified = last_modified.value_or("");
    out.failures = static_cast<std::uint64_t>(failures.value_or(0));
    state.sources.emplace(name, std::move(out));
  }
  return state;
}

std::string format_sync_state(const SyncState& state) {
  json sources = json::object();
  for (const auto& [name, s] : state.sources) {
    json j = {{"url", s.url}, {"failures", s.failures}};
    auto put = [&](const char* key, const auto& value) {
      if (value) j[key] = *value;
    };
    put("last_attempt", s.last_attempt);
    put("last_success", s.last_success);
    put("last_change", s.last_change);
    put("last_error", s.last_error);
    put("signed_at", s.signed_at);
    if (!s.etag.empty()) j["etag"] = s.etag;
    if (!s.last_modified.empty()) j["last_modified"] = s.last_modified;
    sources[name] = std::move(j);
  }
  // Replacement characters, never an exception, for bytes a server sent.
  return json{{"version", 1}, {"sources", std::move(sources)}}.dump(2, ' ', false, json::error_handler_t::replace) +
         "\n";
}

Result<SyncState> load_sync_state(const Config& config) { return load_sync_state(config, sync_owner(config)); }

Result<SyncState> load_sync_state(const Config& config, uid_t owner) {
  std::string path = sync_path(config, kSyncStateFile);
  if (access(path.c_str(), F_OK) != 0 && errno == ENOENT) return SyncState{};
  // Whoever could write it could vouch for a dead lock source.
  MID_CHECK(check_policy_file(config, path, owner));
  auto text = read_file(path, kMaxSyncStateBytes);
  if (!text.ok()) return text.error();
  return parse_sync_state(*text, path);
}

std::optional<std::string> stale_lock_view(const Config& config, const Result<SyncState>& state, std::int64_t now) {
  if (config.policy.lock_mode != LockMode::strict || !config.sync.locks_url) return std::nullopt;
  if (!state.ok()) return "the lock source's state cannot be read: " + state.error().message;
  auto it = state->sources.find("locks");
  if (it == state->sources.end() || !it->second.last_success)
    return std::string("the lock source has never synced") +
           (it != state->sources.end() && it->second.last_error ? ": " + *it->second.last_error : "");
  std::int64_t age = now - *it->second.last_success;
  // A sync "in the future" (the clock stepped back, or a forged state)
  // vouches for nothing: strict waits for the next real one.
  if (age < -kSyncClockLeeway)
    return "the lock source's last sync lies " + std::to_string(-age) + " s in the future (the clock moved back?)";
  if (age <= config.sync.locks_max_age.count()) return std::nullopt;
  std::string why = "the lock source last synced " + std::to_string(age) + " s ago (sync.locks_max_age is " +
                    std::to_string(config.sync.locks_max_age.count()) + " s)";
  if (it->second.last_error) why += ": " + *it->second.last_error;
  return why;
}

}  // namespace machineid
