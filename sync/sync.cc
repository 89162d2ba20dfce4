#include "machineid/sync.h"

#include <cctype>
#include <charconv>

#include "machineid/ca.h"
#include "machineid/fetch.h"
#include "machineid/io.h"
#include "machineid/policy.h"
#include "machineid/resources.h"

namespace machineid {
namespace {

std::string_view file_of(Stream stream) {
  switch (stream) {
    case Stream::ca: return kSyncCaFile;
    case Stream::roles: return kSyncRolesFile;
    case Stream::locks: return kSyncLocksFile;
  }
  return {};
}

// The trusted comment's "key:value" (minisign's own form) or "key=value"
// words.
std::optional<std::string_view> comment_field(std::string_view comment, std::string_view key) {
  std::size_t i = 0;
  while (i < comment.size()) {
    while (i < comment.size() && std::isspace(static_cast<unsigned char>(comment[i]))) ++i;
    std::size_t end = i;
    while (end < comment.size() && !std::isspace(static_cast<unsigned char>(comment[end]))) ++end;
    std::string_view word = comment.substr(i, end - i);
    if (word.size() > key.size() && word.starts_with(key) && (word[key.size()] == ':' || word[key.size()] == '='))
      return word.substr(key.size() + 1);
    i = end;
  }
  return std::nullopt;
}

// Roles and locks as verifierd will read them: every document loads, and
// each stream holds only its own kind.
Result<std::string> check_resources(std::string_view body, const std::string& url, Stream stream) {
  Policy p;
  ResourceFile kind = stream == Stream::roles ? ResourceFile::roles : ResourceFile::locks;
  MID_CHECK(parse_resources(body, url, p, kind));
  if (!p.role_errors.empty()) return make_error(Errc::malformed, p.role_errors.front());
  if (!p.lock_errors.empty()) return make_error(Errc::malformed, p.lock_errors.front());
  if (stream == Stream::roles && !p.locks.empty())
    return make_error(Errc::malformed, url + ": a roles stream holds lock '" + p.locks.front().name + "'");
  if (stream == Stream::locks && !p.roles.empty())
    return make_error(Errc::malformed, url + ": a locks stream holds role '" + p.roles.begin()->first + "'");
  return stream == Stream::roles ? std::to_string(p.roles.size()) + " roles" : std::to_string(p.locks.size()) + " locks";
}

}  // namespace

std::string_view stream_name(Stream stream) {
  switch (stream) {
    case Stream::ca: return "ca";
    case Stream::roles: return "roles";
    case Stream::locks: return "locks";
  }
  return {};
}

Syncer::Syncer(Config config) : config_(std::move(config)) {
  if (config_.sync.signing_key) {
    auto key = MinisignKey::parse(*config_.sync.signing_key);
    if (key.ok()) key_ = *key;  // parse_config checked it
  }
  if (auto saved = load_sync_state(config_); saved.ok()) state_ = std::move(*saved);
}

std::vector<Stream> Syncer::streams() const {
  std::vector<Stream> out;
  if (config_.cluster.user_ca_url) out.push_back(Stream::ca);
  if (config_.sync.roles_url) out.push_back(Stream::roles);
  if (config_.sync.locks_url) out.push_back(Stream::locks);
  return out;
}

std::chrono::seconds Syncer::interval(Stream stream) const {
  switch (stream) {
    case Stream::ca: return config_.cluster.refresh_interval;
    case Stream::roles: return config_.sync.roles_interval;
    case Stream::locks: return config_.sync.locks_interval;
  }
  return config_.sync.locks_interval;
}

Result<SyncReport> Syncer::sync(Stream stream, std::int64_t now) {
  SyncSource& source = state_.sources[std::string(stream_name(stream))];
  auto outcome = attempt(stream, source);
  source.last_attempt = now;
  if (outcome.ok()) {
    source.last_success = now;
    source.last_error.reset();
    source.failures = 0;
    if (outcome->changed) source.last_change = now;
  } else {
    source.last_error = outcome.error().message;
    ++source.failures;
  }
  // verifierd reads the state for the lock source's age: a state that
  // cannot be written makes a strict node deny, which is the safe way.
  if (Status saved = write_file_atomic(sync_path(config_, kSyncStateFile), format_sync_state(state_)); !saved.ok())
    return outcome.ok() ? Result<SyncReport>(saved.error()) : outcome;
  return outcome;
}

Result<SyncReport> Syncer::attempt(Stream stream, SyncSource& source) {
  const bool ca = stream == Stream::ca;
  FetchOptions options;
  options.url = ca ? *config_.cluster.user_ca_url : stream == Stream::roles ? *config_.sync.roles_url
                                                                             : *config_.sync.locks_url;
  options.pin = ca ? config_.cluster.user_ca_pin : config_.sync.pin;
  if (!ca) options.ca_bundle = config_.sync.ca_bundle;
  options.max_bytes = ca ? kMaxCaFileBytes : kMaxResourceFileBytes;
  const std::string path = sync_path(config_, file_of(stream));
  // A conditional request only while the file it validates is in place.
  auto current = read_file(path, options.max_bytes);
  if (source.url == options.url && current.ok()) {
    options.etag = source.etag;
    options.last_modified = source.last_modified;
  }
  MID_TRY(fetched, fetch(options));
  SyncReport report;
  if (fetched.not_modified) {
    report.not_modified = true;
    report.summary = "not modified";
    return report;
  }

  std::optional<std::int64_t> signed_at;
  if (ca) {
    // The proxy's export names its cluster on every line; the daemon loads
    // the file with this same parser.
    MID_TRY(cas, CaSet::parse(fetched.body, options.url, config_.cluster.name));
    report.summary = std::to_string(cas.keys().size()) + " CA key(s)";
  } else {
    if (key_) {
      MID_TRY(when, check_signature(options.url, fetched.body, source));
      signed_at = when;
    }
    MID_TRY(summary, check_resources(fetched.body, options.url, stream));
    report.summary = std::move(summary);
  }
  // Rewriting an unchanged file would make the daemon reload for nothing.
  if (!current.ok() || *current != fetched.body) {
    MID_CHECK(write_file_atomic(path, fetched.body, 0644));
    report.changed = true;
  }
  source.url = options.url;
  source.etag = fetched.etag;
  source.last_modified = fetched.last_modified;
  if (signed_at) source.signed_at = signed_at;
  return report;
}

Result<std::optional<std::int64_t>> Syncer::check_signature(const std::string& url, std::string_view body,
                                                            const SyncSource& source) {
  FetchOptions options;
  options.url = url + ".minisig";
  options.pin = config_.sync.pin;
  options.ca_bundle = config_.sync.ca_bundle;
  options.max_bytes = kMaxMinisignBytes;
  MID_TRY(signature, fetch(options));
  MID_TRY(comment, minisign_verify(*key_, body, signature.body, options.url));
  // One key may sign the streams of several clusters: the signature must
  // name ours.
  auto cluster = comment_field(comment, "cluster");
  if (!cluster || *cluster != config_.cluster.name)
    return make_error(Errc::crypto, options.url + ": the trusted comment names " +
                                        (cluster ? "cluster '" + std::string(*cluster) + "'" : "no cluster") +
                                        ", not '" + config_.cluster.name + "'");
  // An older signed stream served again (a replay) would take back a lock.
  std::optional<std::int64_t> signed_at;
  if (auto stamp = comment_field(comment, "timestamp")) {
    std::int64_t t = 0;
    auto [end, ec] = std::from_chars(stamp->data(), stamp->data() + stamp->size(), t);
    if (ec != std::errc() || end != stamp->data() + stamp->size())
      return make_error(Errc::malformed, options.url + ": the trusted comment's timestamp is not a number");
    if (source.signed_at && t < *source.signed_at && source.url == url)
      return make_error(Errc::crypto, options.url + ": signed at " + std::to_string(t) +
                                          ", before the stream in force (" + std::to_string(*source.signed_at) +
                                          "): an old stream is not taken back");
    signed_at = t;
  } else if (source.signed_at && source.url == url) {
    // Otherwise any older stream signed without a time could be served again.
    return make_error(Errc::crypto, options.url + ": the trusted comment has no timestamp, and the stream in force "
                                                  "had one: an undated stream is not taken");
  }
  return signed_at;
}

}  // namespace machineid
