#include "machineid/fetch.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <string_view>

#include "machineid/encoding.h"

namespace machineid {
namespace {

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;

// curl_global_init once, before the first handle and from whichever thread
// comes first; it is never undone, as libcurl is used until the process ends.
bool curl_ready() {
  static const bool ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  return ready;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

// The config's "sha256:<hex or base64>" as libcurl's "sha256//<base64>".
Result<std::string> curl_pin(std::string_view pin) {
  constexpr std::string_view prefix = "sha256:";
  auto bad = make_error(Errc::config, "a pin must be \"sha256:\" and a SHA-256 digest in hex or base64");
  if (!pin.starts_with(prefix)) return bad;
  std::string_view digest = pin.substr(prefix.size());
  ByteVector bytes;
  if (digest.size() == 64 &&
      std::all_of(digest.begin(), digest.end(), [](char c) { return hex_digit(c) >= 0; })) {
    for (std::size_t i = 0; i < digest.size(); i += 2)
      bytes.push_back(
          static_cast<std::uint8_t>(hex_digit(digest[i]) * 16 + hex_digit(digest[i + 1])));
  } else {
    auto decoded = base64_decode(digest);
    if (!decoded.ok() || decoded->size() != 32) return bad;
    bytes = std::move(*decoded);
  }
  return "sha256//" + base64_encode(bytes);
}

struct Transfer {
  std::string body;
  std::size_t max_bytes;
  bool too_large = false;
  std::string etag, last_modified;
};

std::size_t on_data(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::size_t n = size * count;
  if (t->body.size() + n > t->max_bytes) {
    t->too_large = true;
    return 0;  // anything but n fails the transfer
  }
  t->body.append(data, n);
  return n;
}

// A validator is echoed back to the server: printable ASCII, bounded.
bool plain(std::string_view value) {
  return value.size() <= kMaxValidatorBytes &&
         std::all_of(value.begin(), value.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

// Called once per header line; keeps the two validators. Headers of an
// earlier answer (a 100 Continue) are overwritten by the final one's.
std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * count);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  auto take = [&](std::string_view name, std::string& out) {
    if (line.size() <= name.size() || line[name.size()] != ':') return;
    for (std::size_t i = 0; i < name.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return;
    std::string_view value = line.substr(name.size() + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (plain(value)) out = std::string(value);
  };
  take("etag", t->etag);
  take("last-modified", t->last_modified);
  return size * count;
}

}  // namespace

Result<Fetched> fetch(const FetchOptions& options) {
  const std::string& url = options.url;
  auto fail = [&](Errc code, const std::string& what) {
    return make_error(code, url + ": " + what);
  };
  if (!url.starts_with("https://")) return fail(Errc::config, "only https:// URLs are fetched");
  std::string pin;
  if (options.pin) {
    auto converted = curl_pin(*options.pin);
    if (!converted.ok()) return with_context(converted.error(), url);
    pin = std::move(*converted);
  }
  if (!curl_ready()) return fail(Errc::io, "libcurl failed to initialise");
  CurlHandle curl(curl_easy_init());
  if (!curl) return fail(Errc::io, "libcurl failed to make a handle");

  Transfer transfer{.body = {}, .max_bytes = options.max_bytes, .too_large = false, .etag = {}, .last_modified = {}};
  char error[CURL_ERROR_SIZE] = "";
  CURL* h = curl.get();
  CURLcode code = CURLE_OK;
  // The first option libcurl refuses fails the fetch: a protection that did
  // not take must not go unnoticed.
  auto set = [&](CURLoption option, auto value) {
    if (code == CURLE_OK) code = curl_easy_setopt(h, option, value);
  };
  set(CURLOPT_URL, url.c_str());
  set(CURLOPT_PROTOCOLS_STR, "https");
  set(CURLOPT_FOLLOWLOCATION, 0L);
  set(CURLOPT_NOSIGNAL, 1L);  // the service owns its signals
  set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout.count()));
  set(CURLOPT_TIMEOUT_MS, static_cast<long>(options.total_timeout.count()));
  // Refuses an announced Content-Length over the limit before reading it.
  set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_bytes));
  set(CURLOPT_WRITEFUNCTION, on_data);
  set(CURLOPT_WRITEDATA, &transfer);
  set(CURLOPT_HEADERFUNCTION, on_header);
  set(CURLOPT_HEADERDATA, &transfer);
  set(CURLOPT_ERRORBUFFER, error);
  if (!options.ca_bundle.empty()) set(CURLOPT_CAINFO, options.ca_bundle.c_str());
  // The validators are ours (from an earlier answer, checked by plain()).
  curl_slist* headers = nullptr;
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> header_list(nullptr, curl_slist_free_all);
  for (auto [name, value] : {std::pair{"If-None-Match: ", &options.etag}, {"If-Modified-Since: ", &options.last_modified}})
    if (!value->empty() && plain(*value))
      if (curl_slist* more = curl_slist_append(headers, (name + *value).c_str())) headers = more;
  header_list.reset(headers);
  if (headers != nullptr) set(CURLOPT_HTTPHEADER, headers);
  if (!pin.empty()) {
    // The pin is the proxy's identity: it is checked whether or not a chain
    // to a trusted root exists, which a self-signed proxy does not have.
    set(CURLOPT_PINNEDPUBLICKEY, pin.c_str());
    set(CURLOPT_SSL_VERIFYPEER, 0L);
  }
  if (code != CURLE_OK)
    return fail(Errc::io, std::string("libcurl refused an option: ") + curl_easy_strerror(code));

  code = curl_easy_perform(h);
  if (transfer.too_large || code == CURLE_FILESIZE_EXCEEDED)
    return fail(Errc::limit,
                "answer exceeds the limit of " + std::to_string(options.max_bytes) + " bytes");
  if (code != CURLE_OK) {
    bool untrusted =
        code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_PINNEDPUBKEYNOTMATCH;
    return fail(untrusted ? Errc::crypto : Errc::io, *error ? error : curl_easy_strerror(code));
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  Fetched out;
  out.etag = std::move(transfer.etag);
  out.last_modified = std::move(transfer.last_modified);
  if (status == 304 && (!options.etag.empty() || !options.last_modified.empty())) {
    out.not_modified = true;
    return out;
  }
  if (status != 200) {
    std::string what = "answered HTTP " + std::to_string(status);
    char* location = nullptr;
    if (curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location != nullptr)
      what += " redirecting to " + std::string(location) + ", which is not followed";
    return fail(Errc::io, what);
  }
  out.body = std::move(transfer.body);
  return out;
}

}  // namespace machineid
