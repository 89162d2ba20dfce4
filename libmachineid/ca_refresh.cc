#include "machineid/ca_refresh.h"

#include <pthread.h>
#include <signal.h>

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "machineid/encoding.h"
#include "machineid/io.h"

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
  auto bad = make_error(Errc::config,
                        "user_ca_pin must be \"sha256:\" and a SHA-256 digest in hex or base64");
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
  std::stop_token stop;
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

// libcurl calls this at least about once a second, even while nothing moves.
int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<Transfer*>(user)->stop.stop_requested() ? 1 : 0;
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<std::string> fetch_ca_export(const CaFetchOptions& options) {
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

  Transfer transfer{
      .body = {}, .max_bytes = options.max_bytes, .too_large = false, .stop = options.stop};
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
  set(CURLOPT_NOSIGNAL, 1L);  // a daemon's thread: the daemon owns the signals
  set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout.count()));
  set(CURLOPT_TIMEOUT_MS, static_cast<long>(options.total_timeout.count()));
  // Refuses an announced Content-Length over the limit before reading it.
  set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_bytes));
  set(CURLOPT_WRITEFUNCTION, on_data);
  set(CURLOPT_WRITEDATA, &transfer);
  set(CURLOPT_NOPROGRESS, 0L);
  set(CURLOPT_XFERINFOFUNCTION, on_progress);
  set(CURLOPT_XFERINFODATA, &transfer);
  set(CURLOPT_ERRORBUFFER, error);
  if (!options.ca_bundle.empty()) set(CURLOPT_CAINFO, options.ca_bundle.c_str());
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
  if (code == CURLE_ABORTED_BY_CALLBACK) return fail(Errc::io, "stopped");
  if (code != CURLE_OK) {
    bool untrusted =
        code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_PINNEDPUBKEYNOTMATCH;
    return fail(untrusted ? Errc::crypto : Errc::io, *error ? error : curl_easy_strerror(code));
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    std::string what = "answered HTTP " + std::to_string(status);
    char* location = nullptr;
    if (curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location != nullptr)
      what += " redirecting to " + std::string(location) + ", which is not followed";
    return fail(Errc::io, what);
  }
  return std::move(transfer.body);
}

Result<CaRefreshOutcome> refresh_ca_file(const CaFetchOptions& options, const std::string& path,
                                         std::string_view cluster) {
  MID_TRY(body, fetch_ca_export(options));
  // The daemon loads the file with this same parser, so what passes here loads there.
  MID_TRY(cas, CaSet::parse(body, options.url, cluster));
  CaRefreshOutcome outcome{.keys = cas.keys().size(), .changed = false};
  // Rewriting an unchanged file would make the daemon reload on every refresh.
  auto current = read_file(path, kMaxCaFileBytes);
  if (current.ok() && *current == body) return outcome;
  MID_CHECK(write_file_atomic(path, body));
  outcome.changed = true;
  return outcome;
}

CaRefresher::CaRefresher(CaFetchOptions options, std::string path, std::string cluster,
                         std::chrono::milliseconds interval, Reporter report)
    : options_(std::move(options)),
      path_(std::move(path)),
      cluster_(std::move(cluster)),
      interval_(std::min<std::chrono::milliseconds>(interval, kMaxCaRefreshWait)),
      report_(std::move(report)),
      thread_([this](std::stop_token stop) { run(std::move(stop)); }) {}

void CaRefresher::stop() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
}

CaRefresher::State CaRefresher::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

void CaRefresher::run(std::stop_token stop) {
  // The daemon blocks its signals before it starts this thread; should a
  // program start it first, the thread still takes none of them (a SIGHUP
  // delivered here would end the process). Faults stay deliverable.
  sigset_t mask;
  sigfillset(&mask);
  for (int fault : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT}) sigdelset(&mask, fault);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  CaFetchOptions options = options_;
  options.stop = stop;
  while (!stop.stop_requested()) {
    auto outcome = refresh_ca_file(options, path_, cluster_);
    if (stop.stop_requested()) return;  // an abandoned fetch is no failure of the proxy
    std::string message;
    {
      std::lock_guard lock(mu_);
      std::int64_t now = unix_now();
      state_.last_attempt = now;
      ++state_.attempts;
      if (outcome.ok()) {
        state_.last_success = now;
        state_.last_error.reset();
        state_.keys = outcome->keys;
        if (outcome->changed) {
          state_.last_change = now;
          message = path_ + ": replaced with " + std::to_string(outcome->keys) +
                    " CA key(s) from " + options.url;
        }
      } else {
        ++state_.failures;
        state_.last_error = outcome.error().message;
        message = std::string(kFailed) + ", keeping " + path_ + ": " + outcome.error().message;
      }
    }
    if (!message.empty() && report_) report_(message);
    std::unique_lock lock(mu_);
    // Wakes only when stop is requested or the interval is over.
    wake_.wait_for(lock, stop, interval_, [] { return false; });
  }
}

}  // namespace machineid
