// HTTPS GETs for machineid-sync, the only part of the product that talks
// to the network: no redirects, bounded answers and time, an optional pin
// of the server's TLS key, and conditional requests (ETag, Last-Modified).
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

#include "machineid/result.h"

namespace machineid {

inline constexpr std::chrono::seconds kFetchConnectTimeout{10};
inline constexpr std::chrono::seconds kFetchTotalTimeout{30};
// An ETag or Last-Modified longer than this is not kept.
inline constexpr std::size_t kMaxValidatorBytes = 256;

struct FetchOptions {
  std::string url;  // https:// only
  // "sha256:<hex or base64>" of the server's SubjectPublicKeyInfo. When set,
  // the pinned key alone authenticates the server (a self-signed
  // certificate is fine); when unset, the system trust store does.
  std::optional<std::string> pin;
  std::string ca_bundle;  // a PEM file trusted instead of the system store; "" for the store
  std::chrono::milliseconds connect_timeout = kFetchConnectTimeout;
  std::chrono::milliseconds total_timeout = kFetchTotalTimeout;
  std::size_t max_bytes = 0;  // the answer must fit where it goes
  // Validators of the copy in hand: a server that still has it answers 304.
  std::string etag, last_modified;
};

struct Fetched {
  bool not_modified = false;  // 304: the copy in hand is current
  std::string body;
  std::string etag, last_modified;  // the server's, for the next request
};

// GETs options.url. Errors name the URL: Errc::config for a URL that is not
// https:// or a malformed pin, Errc::limit for a body over max_bytes,
// Errc::crypto when the TLS peer fails verification or the pin, Errc::io for
// everything else (connection, timeout, a body cut short, another HTTP
// status, a redirect, which is never followed).
Result<Fetched> fetch(const FetchOptions& options);

}  // namespace machineid
