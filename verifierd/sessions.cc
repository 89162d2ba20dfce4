#include "sessions.h"

#include <sys/stat.h>

#include <cerrno>
#include <limits>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "machineid/encoding.h"
#include "machineid/io.h"

namespace verifierd {

using namespace machineid;
using nlohmann::ordered_json;

namespace {

constexpr int kFormatVersion = 1;

ordered_json to_json(const Session& s) {
  ordered_json j = {{"id", s.who.correlation_id},
                    {"pid", s.pid},
                    {"start_time", s.start_time},
                    {"login", s.login},
                    {"uid", s.uid},
                    {"key_id", s.who.key_id},
                    {"bot", s.who.bot},
                    {"bot_instance", s.who.bot_instance},
                    {"roles", s.who.roles},
                    {"serial", s.who.serial},
                    {"cert_fp", s.who.cert_fp},
                    {"ca_fp", s.who.ca_fp},
                    {"source", s.source},
                    {"opened_at", s.opened_at}};
  j["ends_at"] = s.ends_at ? ordered_json(*s.ends_at) : ordered_json(nullptr);
  j["ending_since"] = s.ending_since ? ordered_json(*s.ending_since) : ordered_json(nullptr);
  return j;
}

// An integer field that fits `out`; a float, a string or a number out of
// range is a malformed table.
template <class Int>
void read_integer(const nlohmann::json& e, const char* key, Int& out) {
  const auto& v = e.at(key);
  bool fits = v.is_number_unsigned() ? v.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<Int>::max())
              : v.is_number_integer() ? v.get<std::int64_t>() >= static_cast<std::int64_t>(std::numeric_limits<Int>::min())
                                      : false;
  if (!fits) throw std::out_of_range(std::string(key) + " is not an integer in range");
  out = v.is_number_unsigned() ? static_cast<Int>(v.get<std::uint64_t>()) : static_cast<Int>(v.get<std::int64_t>());
}

template <class Int>
void read_optional(const nlohmann::json& e, const char* key, std::optional<Int>& out) {
  if (e.at(key).is_null()) return;
  Int value{};
  read_integer(e, key, value);
  out = value;
}

}  // namespace

void parse_session_certificate(Session& session) {
  session.cert.reset();
  session.identity.reset();
  auto blob = base64_decode(session.certificate);
  if (!blob.ok()) return;
  auto cert = parse_certificate(*blob);
  if (!cert.ok()) return;
  auto identity = read_identity(*cert);
  if (!identity.ok()) return;
  session.cert = std::make_shared<const Certificate>(std::move(*cert));
  session.identity = std::make_shared<const Identity>(std::move(*identity));
}

Status SessionTable::load() {
  sessions_.clear();
  struct stat st {};
  if (stat(path_.c_str(), &st) != 0 && errno == ENOENT) return {};
  auto text = read_file(path_, kMaxSessionsFileBytes);
  if (!text.ok()) return text.error();
  auto j = nlohmann::json::parse(*text, nullptr, false);
  auto bad = [&](const std::string& why) { return make_error(Errc::malformed, path_ + ": " + why); };
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_integer() || version->get<std::int64_t>() != kFormatVersion)
    return bad("unknown version");
  auto list = j.find("sessions");
  if (list == j.end() || !list->is_array()) return bad("no \"sessions\" list");
  if (list->size() > kMaxSessions) return bad("more than " + std::to_string(kMaxSessions) + " sessions");
  std::map<std::string, Session> loaded;
  for (const auto& e : *list) {
    try {
      Session s;
      s.who.correlation_id = e.at("id").get<std::string>();
      read_integer(e, "pid", s.pid);
      read_integer(e, "start_time", s.start_time);
      s.login = e.at("login").get<std::string>();
      read_integer(e, "uid", s.uid);
      s.certificate = e.at("certificate").get<std::string>();
      for (auto [field, name] : {std::pair{&s.who.key_id, "key_id"}, {&s.who.bot, "bot"},
                                 {&s.who.bot_instance, "bot_instance"}, {&s.who.roles, "roles"},
                                 {&s.who.serial, "serial"}, {&s.who.cert_fp, "cert_fp"}, {&s.who.ca_fp, "ca_fp"},
                                 {&s.source, "source"}})
        *field = e.at(name).get<std::string>();
      read_integer(e, "opened_at", s.opened_at);
      read_optional(e, "ends_at", s.ends_at);
      read_optional(e, "ending_since", s.ending_since);
      if (s.who.correlation_id.empty() || s.pid <= 0) return bad("a session without an id or a process");
      parse_session_certificate(s);
      std::string id = s.who.correlation_id;
      loaded[id] = std::move(s);
    } catch (const std::exception& x) {  // nlohmann's, and read_integer's out_of_range
      return bad(std::string("a malformed session: ") + x.what());
    }
  }
  sessions_ = std::move(loaded);
  return {};
}

Status SessionTable::save() const {
  ordered_json list = ordered_json::array();
  for (const auto& [id, s] : sessions_) {
    ordered_json j = to_json(s);
    j["certificate"] = s.certificate;
    list.push_back(std::move(j));
  }
  ordered_json doc = {{"version", kFormatVersion}, {"sessions", std::move(list)}};
  // Private: the certificates are the sessions' credentials' public halves,
  // but who is logged in where is nobody else's business. Not synced: the
  // table outlives the daemon (a restart, kill -9), never a reboot, which
  // ends every session it lists; each login's session open and close would
  // otherwise wait on two fsyncs, and the event loop with them.
  return write_file_atomic(path_, doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", 0600,
                           Durability::until_reboot);
}

Status SessionTable::add(Session session) {
  std::string id = session.who.correlation_id;
  if (sessions_.size() >= kMaxSessions && !sessions_.count(id))
    return make_error(Errc::limit, "the session table is full (" + std::to_string(kMaxSessions) + " sessions)");
  sessions_[id] = std::move(session);
  return save();
}

std::optional<Session> SessionTable::remove(const std::string& id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  Session s = std::move(it->second);
  sessions_.erase(it);
  (void)save();  // a failed write leaves a session the next start finds gone
  return s;
}

Session* SessionTable::find(const std::string& id) {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : &it->second;
}

Session* SessionTable::find_process(pid_t pid, std::uint64_t start_time) {
  for (auto& [id, s] : sessions_)
    if (s.pid == pid && s.start_time == start_time) return &s;
  return nullptr;
}

std::string SessionTable::json(std::int64_t now) const {
  ordered_json list = ordered_json::array();
  for (const auto& [id, s] : sessions_) {
    ordered_json j = to_json(s);
    j["age_seconds"] = now - s.opened_at;
    list.push_back(std::move(j));
  }
  return ordered_json{{"sessions", std::move(list)}}.dump(-1, ' ', false,
                                                           nlohmann::json::error_handler_t::replace);
}

}  // namespace verifierd
