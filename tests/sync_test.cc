// machineid-sync against a real HTTPS server (Python's, with ETag and
// If-None-Match), streams signed by the real minisign, and a real daemon
// that denies once a published lock lands, or once the lock source is stale.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "machineid/client.h"
#include "machineid/config.h"
#include "machineid/minisign.h"
#include "machineid/protocol.h"
#include "machineid/sync.h"
#include "sshd_harness.h"

namespace machineid {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::SshdHarness;

constexpr const char* kCluster = "example.teleport.sh";

template <class F>
bool eventually(F done, std::chrono::milliseconds patience = 10s) {
  for (auto until = Clock::now() + patience; Clock::now() < until; std::this_thread::sleep_for(20ms))
    if (done()) return true;
  return done();
}

std::string lock_on(const std::string& name, const std::string& user) {
  return "kind: lock\nversion: v2\nmetadata:\n  name: " + name + "\nspec:\n  message: incident\n  target:\n    user: " +
         user + "\n";
}

// tests/support/https_server.py serving dir/www, with a certificate for
// 127.0.0.1 made at test time.
class HttpsServer {
 public:
  explicit HttpsServer(const testing::TempDir& dir) : www_(dir.file("www")), cert_(dir.file("server.crt")) {
    std::filesystem::create_directories(www_);
    testing::run_ok({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", dir.file("server.key"), "-out", cert_, "-days", "1", "-subj", "/CN=127.0.0.1",
                     "-addext", "subjectAltName=IP:127.0.0.1"});
    std::string out = dir.file("server.out");
    server_.start({"/usr/bin/python3", std::string(MID_SOURCE_DIR) + "/tests/support/https_server.py", www_, cert_,
                   dir.file("server.key")},
                  out, dir.file("server.err"));
    eventually([&] {
      std::string text = testing::read_file(out);
      if (text.rfind("PORT ", 0) != 0 || text.find('\n') == std::string::npos) return false;
      port_ = std::stoi(text.substr(5));
      return true;
    });
    log_ = dir.file("requests.log");
  }
  // Published atomically, as a web server's document root is updated.
  void publish(const std::string& name, const std::string& content) const {
    testing::write_file(www_ + "/." + name + ".tmp", content);
    std::filesystem::rename(www_ + "/." + name + ".tmp", www_ + "/" + name);
  }
  void remove(const std::string& name) const { std::filesystem::remove(www_ + "/" + name); }
  std::string url(const std::string& name) const { return "https://127.0.0.1:" + std::to_string(port_) + "/" + name; }
  std::string file(const std::string& name) const { return www_ + "/" + name; }
  const std::string& cert() const { return cert_; }
  int port() const { return port_; }
  std::string requests() const { return testing::read_file(log_); }

 private:
  std::string www_, cert_, log_;
  testing::Process server_;
  int port_ = 0;
};

// A minisign key pair made by the real tool, without a password.
struct Signer {
  explicit Signer(const testing::TempDir& dir, const std::string& name)
      : secret(dir.file(name + ".key")), pub(dir.file(name + ".pub")) {
    testing::run_ok({"minisign", "-G", "-W", "-s", secret, "-p", pub});
    std::istringstream in(testing::read_file(pub));
    std::getline(in, public_key);  // untrusted comment
    std::getline(in, public_key);
  }
  // Signs `file` into file.minisig with `comment` as the trusted comment.
  void sign(const std::string& file, const std::string& comment) const {
    testing::run_ok({"minisign", "-S", "-s", secret, "-m", file, "-t", comment});
  }
  std::string secret, pub, public_key;
};

TEST(Minisign, RealSignaturesVerifyInBothFormsAndAnyChangeFails) {
  testing::TempDir dir;
  Signer signer(dir, "k");
  auto key = MinisignKey::parse(testing::read_file(signer.pub));  // the whole .pub file
  ASSERT_TRUE(key.ok()) << key.error().message;
  auto bare = MinisignKey::parse(signer.public_key);
  ASSERT_TRUE(bare.ok()) << bare.error().message;
  EXPECT_EQ(bare->id_hex(), key->id_hex());
  // minisign prints the key id in its untrusted comment.
  EXPECT_NE(testing::read_file(signer.pub).find(key->id_hex()), std::string::npos) << key->id_hex();
  std::string message = "kind: lock\n";
  testing::write_file(dir.file("m"), message);
  for (bool legacy : {false, true}) {
    std::vector<std::string> argv = {"minisign", "-S", "-s", signer.secret, "-m", dir.file("m"), "-t", "cluster:c"};
    if (legacy) argv.push_back("-l");
    testing::run_ok(argv);
    std::string sig = testing::read_file(dir.file("m.minisig"));
    auto comment = minisign_verify(*key, message, sig, "m.minisig");
    ASSERT_TRUE(comment.ok()) << comment.error().message;
    EXPECT_EQ(*comment, "cluster:c");
    EXPECT_EQ(minisign_verify(*key, message + " ", sig, "m.minisig").error().code, Errc::crypto);
    std::string forged = sig;
    forged.replace(forged.find("cluster:c"), 9, "cluster:d");
    auto changed = minisign_verify(*key, message, forged, "m.minisig");
    ASSERT_FALSE(changed.ok());
    EXPECT_NE(changed.error().message.find("trusted comment"), std::string::npos) << changed.error().message;
  }
  EXPECT_EQ(minisign_verify(*key, message, "untrusted comment: x\nnot base64\n", "m.minisig").error().code,
            Errc::malformed);
}

class SyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(server_.port(), 0);
    ASSERT_EQ(mkdir(dir_.file("sync").c_str(), 0755), 0);
  }

  Config config(const std::string& extra = "") const {
    std::string toml = std::string("[cluster]\nname = \"") + kCluster + "\"\nuser_ca_file = \"" + dir_.file("ca.pub") +
                       "\"\nuser_ca_url = \"" + server_.url("export") + "\"\nuser_ca_pin = \"" + pin() +
                       "\"\n[sync]\ndir = \"" + dir_.file("sync") + "\"\nroles_url = \"" + server_.url("roles.yaml") +
                       "\"\nlocks_url = \"" + server_.url("locks.yaml") + "\"\nca_bundle = \"" + server_.cert() +
                       "\"\n" + extra;
    auto c = parse_config(toml, "verifierd.toml", "node-1");
    EXPECT_TRUE(c.ok()) << c.error().message;
    return c.ok() ? *c : Config{};
  }
  // The server's SubjectPublicKeyInfo digest, as openssl computes it.
  std::string pin() const {
    static std::string cached;
    if (cached.empty()) {
      auto r = testing::run({"/bin/sh", "-c",
                             "openssl x509 -in '" + server_.cert() +
                                 "' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -hex"});
      cached = "sha256:" + r.output.substr(r.output.rfind(' ') + 1, 64);
    }
    return cached;
  }
  std::string synced(std::string_view name) const { return testing::read_file(dir_.file("sync/" + std::string(name))); }
  std::string export_of(const std::string& cluster) {
    std::istringstream in(testing::read_file(kg_.make_key("ca-" + std::to_string(++keys_)) + ".pub"));
    std::string type, b64;
    in >> type >> b64;
    return "cert-authority " + type + " " + b64 + " clustername=" + cluster + "&type=user\n";
  }

  testing::Keygen kg_;
  testing::TempDir dir_;
  HttpsServer server_{dir_};
  int keys_ = 0;
};

TEST_F(SyncTest, TheCaExportLandsAndAnotherClustersIsRefusedWhole) {
  std::string good = export_of(kCluster);
  server_.publish("export", good);
  Syncer syncer(config());
  auto r = syncer.sync(Stream::ca, 1000);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->changed);
  EXPECT_EQ(synced(kSyncCaFile), good);

  server_.publish("export", export_of("other.example.com"));
  r = syncer.sync(Stream::ca, 1010);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("other.example.com"), std::string::npos) << r.error().message;
  EXPECT_EQ(synced(kSyncCaFile), good);  // the last good copy stays
  const SyncSource& ca = syncer.state().sources.at("ca");
  EXPECT_EQ(ca.last_success, 1000);
  EXPECT_EQ(ca.last_attempt, 1010);
  EXPECT_EQ(ca.failures, 1u);
  ASSERT_TRUE(ca.last_error);
  // The state file says the same to verifierd and machineidctl.
  auto saved = load_sync_state(syncer.config());
  ASSERT_TRUE(saved.ok()) << saved.error().message;
  EXPECT_EQ(saved->sources.at("ca").last_error, ca.last_error);
}

TEST_F(SyncTest, AnUnchangedStreamIsAskedForConditionallyAndNotRewritten) {
  server_.publish("locks.yaml", lock_on("l1", "bot-a"));
  Syncer syncer(config());
  ASSERT_TRUE(syncer.sync(Stream::locks, 1000).ok());
  struct stat before {}, after{};
  ASSERT_EQ(stat(dir_.file("sync/locks.yaml").c_str(), &before), 0);
  auto r = syncer.sync(Stream::locks, 1010);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->not_modified);
  EXPECT_FALSE(r->changed);
  ASSERT_EQ(stat(dir_.file("sync/locks.yaml").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);  // verifierd has nothing to reload
  EXPECT_NE(server_.requests().find("GET /locks.yaml 304 conditional=yes"), std::string::npos) << server_.requests();
  // A 304 is a good answer: the lock source is current.
  EXPECT_EQ(syncer.state().sources.at("locks").last_success, 1010);
  // A restarted sync keeps its validators.
  Syncer restarted(config());
  ASSERT_TRUE(restarted.sync(Stream::locks, 1020).ok());
  EXPECT_EQ(restarted.state().sources.at("locks").last_change, 1000);
}

TEST_F(SyncTest, AStreamWithOneBadDocumentIsRefusedWhole) {
  std::string good = lock_on("l1", "bot-a");
  server_.publish("locks.yaml", good);
  Syncer syncer(config());
  ASSERT_TRUE(syncer.sync(Stream::locks, 1000).ok());
  server_.publish("locks.yaml", lock_on("l2", "bot-b") + "---\nkind: lock\nversion: v2\nmetadata:\n  name: l3\nspec:\n  target:\n    usr: bot-c\n");
  auto r = syncer.sync(Stream::locks, 1010);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("usr"), std::string::npos) << r.error().message;
  EXPECT_EQ(synced(kSyncLocksFile), good);
}

TEST_F(SyncTest, AStateFileOthersCouldWriteIsNotBelieved) {
  Config c = config("locks_max_age = \"1h\"\n");
  std::string state = dir_.file("sync/state.json");
  testing::write_file(state, "{\"version\":1,\"sources\":{\"locks\":{\"url\":\"x\",\"last_success\":1000}}}\n");
  EXPECT_FALSE(stale_lock_view(c, load_sync_state(c), 1010));
  ASSERT_EQ(chmod(state.c_str(), 0666), 0);
  auto loaded = load_sync_state(c);
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().message.find("writable by"), std::string::npos) << loaded.error().message;
  // Strict (the default) denies on it.
  auto why = stale_lock_view(c, loaded, 1010);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("cannot be read"), std::string::npos) << *why;
}

TEST_F(SyncTest, ASyncRecordedInTheFutureVouchesForNothing) {
  Config c = config("locks_max_age = \"1h\"\n");
  testing::write_file(dir_.file("sync/state.json"),
                      "{\"version\":1,\"sources\":{\"locks\":{\"url\":\"x\",\"last_success\":100000}}}\n");
  auto state = load_sync_state(c);
  ASSERT_TRUE(state.ok()) << state.error().message;
  EXPECT_FALSE(stale_lock_view(c, state, 100000 - kSyncClockLeeway));  // within the leeway
  auto why = stale_lock_view(c, state, 100000 - 3600);                // the clock went back an hour
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("in the future"), std::string::npos) << *why;
}

TEST_F(SyncTest, AStreamOfTheOtherKindIsRefused) {
  server_.publish("locks.yaml", testing::kCiRole);
  Syncer syncer(config());
  auto r = syncer.sync(Stream::locks, 1000);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("a locks stream holds role 'ci'"), std::string::npos) << r.error().message;
  EXPECT_FALSE(std::filesystem::exists(dir_.file("sync/locks.yaml")));
}

TEST_F(SyncTest, SignedStreamsMustVerifyNameTheClusterAndNotGoBackInTime) {
  Signer signer(dir_, "publisher"), other(dir_, "other");
  Syncer syncer(config("signing_key = \"" + signer.public_key + "\"\n"));
  auto publish = [&](const std::string& content, const Signer& by, const std::string& comment) {
    server_.publish("locks.yaml", content);
    by.sign(server_.file("locks.yaml"), comment);
  };
  std::string v1 = lock_on("l1", "bot-a");
  publish(v1, signer, "cluster:example.teleport.sh timestamp:2000");
  auto r = syncer.sync(Stream::locks, 1000);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(synced(kSyncLocksFile), v1);
  EXPECT_EQ(syncer.state().sources.at("locks").signed_at, 2000);

  auto refused = [&](const std::string& content, const Signer& by, const std::string& comment, const std::string& why) {
    publish(content, by, comment);
    auto got = syncer.sync(Stream::locks, 1100);
    EXPECT_FALSE(got.ok()) << comment;
    if (!got.ok()) {
      EXPECT_NE(got.error().message.find(why), std::string::npos) << got.error().message;
    }
    EXPECT_EQ(synced(kSyncLocksFile), v1);
  };
  std::string v2 = v1 + "---\n" + lock_on("l2", "bot-b");
  refused(v2, other, "cluster:example.teleport.sh timestamp:3000", "not by the trusted key");
  refused(v2, signer, "cluster:staging.teleport.sh timestamp:3000", "names cluster 'staging.teleport.sh'");
  refused(v2, signer, "cluster:example.teleport.sh timestamp:1000", "an old stream is not taken back");
  refused(v2, signer, "cluster:example.teleport.sh", "an undated stream is not taken");
  // Signed, then changed on the server.
  publish(v2, signer, "cluster:example.teleport.sh timestamp:3000");
  testing::write_file(server_.file("locks.yaml"), v2 + "# appended\n");
  auto tampered = syncer.sync(Stream::locks, 1200);
  ASSERT_FALSE(tampered.ok());
  EXPECT_NE(tampered.error().message.find("does not verify"), std::string::npos) << tampered.error().message;
  // No signature at all.
  server_.remove("locks.yaml.minisig");
  EXPECT_FALSE(syncer.sync(Stream::locks, 1300).ok());
  EXPECT_EQ(synced(kSyncLocksFile), v1);
  // And the good new one lands.
  publish(v2, signer, "cluster:example.teleport.sh timestamp:3000");
  ASSERT_TRUE(syncer.sync(Stream::locks, 1400).ok());
  EXPECT_EQ(synced(kSyncLocksFile), v2);
}

// The whole path: the sync service polls, the daemon reloads, sshd's helper
// is refused. Measures the time from publishing a lock to the first denial.
class SyncDaemonTest : public SyncTest {
 protected:
  void start(const std::string& sync_extra, const std::string& policy_extra = "") {
    testing::HarnessOptions options;
    options.daemon_toml = "[sync]\ndir = \"" + dir_.file("sync") + "\"\nlocks_url = \"" + server_.url("locks.yaml") +
                          "\"\nca_bundle = \"" + server_.cert() + "\"\n" + sync_extra;
    h_ = std::make_unique<SshdHarness>(MID_BIN_DIR, options);
    h_->write_role("ci", testing::kCiRole);
    std::string toml = testing::read_file(h_->file("etc/verifierd.toml"));
    toml.replace(toml.find("[policy]\n"), 9, "[policy]\n" + policy_extra);
    testing::write_file(h_->file("etc/verifierd.toml"), toml);
    ASSERT_TRUE(h_->start_daemon());
    key_ = h_->keygen().make_key("user");
  }
  void start_sync() {
    ASSERT_TRUE(sync_.start({std::string(MID_BIN_DIR) + "/machineid-sync", "--config", h_->file("etc/verifierd.toml")},
                            dir_.file("sync.out"), dir_.file("sync.err")));
  }
  std::string cert(const std::string& bot) {
    testing::CertSpec spec{.ca = h_->ca(), .key = key_ + ".pub"};
    spec.identity = bot;
    spec.options = {R"(extension:teleport-roles={"version":"v1","roles":["ci"]})", "extension:impersonator=" + bot};
    return h_->keygen().sign(spec);
  }
  bool allowed(const std::string& c) { return h_->ask_helper("root", c).status == 0; }
  nlohmann::json status() {
    auto reply = call_daemon(h_->socket(), encode_simple(MessageKind::status), 2000);
    if (!reply.ok()) return {};
    auto s = decode_status_reply(*reply);
    return s.ok() ? nlohmann::json::parse(s->json, nullptr, false) : nlohmann::json();
  }

  std::unique_ptr<SshdHarness> h_;
  testing::Process sync_;
  std::string key_;
};

TEST_F(SyncDaemonTest, APublishedLockDeniesTheNextLoginWithinAPoll) {
  server_.publish("locks.yaml", "");
  start("locks_interval = \"1s\"\nlocks_max_age = \"1m\"\n");
  std::string c = cert("bot-ci");
  // Strict (the default): until the lock source has synced, nobody gets in.
  EXPECT_FALSE(allowed(c));
  start_sync();
  ASSERT_TRUE(eventually([&] { return allowed(c); })) << testing::read_file(dir_.file("sync.err"));
  auto s = status();
  EXPECT_EQ(s["sync"]["sources"]["locks"]["url"], server_.url("locks.yaml")) << s.dump();
  EXPECT_TRUE(s["sync"]["stale_locks"].is_null()) << s.dump();
  auto text = testing::run({std::string(MID_BIN_DIR) + "/machineidctl", "status", "--socket", h_->socket()});
  EXPECT_NE(text.output.find("sync      locks " + server_.url("locks.yaml") + ": synced "), std::string::npos)
      << text.output;

  auto published = Clock::now();
  server_.publish("locks.yaml", lock_on("incident-9", "bot-ci"));
  ASSERT_TRUE(eventually([&] { return !allowed(c); })) << testing::read_file(dir_.file("sync.err"));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - published).count();
  std::cout << "[ measured ] publish to deny: " << ms << " ms (locks_interval 1 s)\n";
  // Another bot is not locked.
  EXPECT_TRUE(allowed(cert("bot-other")));
}

TEST_F(SyncDaemonTest, AStrictNodeDeniesOnceTheLockSourceIsStale) {
  server_.publish("locks.yaml", "");
  start("locks_interval = \"1s\"\nlocks_max_age = \"3s\"\n");
  std::string c = cert("bot-ci");
  start_sync();
  ASSERT_TRUE(eventually([&] { return allowed(c); })) << testing::read_file(dir_.file("sync.err"));
  // The source goes away: the sync keeps the last good locks, but after
  // locks_max_age the node no longer trusts its view of them.
  server_.remove("locks.yaml");
  ASSERT_TRUE(eventually([&] { return !allowed(c); }, 15s))
      << status().dump() << "\n" << testing::read_file(dir_.file("sync.err")) << testing::read_file(dir_.file("sync/state.json"));
  auto s = status();
  ASSERT_TRUE(s["sync"]["stale_locks"].is_string()) << s.dump();
  EXPECT_NE(s["sync"]["stale_locks"].get<std::string>().find("last synced"), std::string::npos) << s.dump();
  EXPECT_NE(s["sync"]["sources"]["locks"]["last_error"].get<std::string>().find("HTTP 404"), std::string::npos)
      << s.dump();
  auto text = testing::run({std::string(MID_BIN_DIR) + "/machineidctl", "status", "--socket", h_->socket()});
  EXPECT_NE(text.output.find("ERROR     sync: the lock source last synced"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("failing ("), std::string::npos) << text.output;
  // Back: logins again.
  server_.publish("locks.yaml", "");
  EXPECT_TRUE(eventually([&] { return allowed(c); }, 15s))
      << status().dump() << "\n" << testing::read_file(dir_.file("sync.err")) << h_->ask_helper("root", c).err;
}

// The daemon may start before machineid-sync has made its directory: it
// watches for it, and takes in what lands there once it exists.
TEST_F(SyncDaemonTest, ASyncDirectoryMadeAfterTheDaemonStartedIsWatched) {
  server_.publish("locks.yaml", lock_on("incident-2", "bot-old"));
  ASSERT_EQ(rmdir(dir_.file("sync").c_str()), 0);
  start("locks_interval = \"1s\"\n");
  std::string c = cert("bot-ci"), old = cert("bot-old");
  EXPECT_FALSE(allowed(c));  // strict: the lock source has never synced
  ASSERT_EQ(mkdir(dir_.file("sync").c_str(), 0755), 0);
  start_sync();
  ASSERT_TRUE(eventually([&] { return allowed(c); }, 20s)) << testing::read_file(dir_.file("sync.err"));
  EXPECT_TRUE(eventually([&] { return !allowed(old); }));
}

TEST_F(SyncDaemonTest, ABestEffortNodeKeepsGoingOnTheLocksItHas) {
  server_.publish("locks.yaml", lock_on("incident-1", "bot-old"));
  start("locks_interval = \"1s\"\nlocks_max_age = \"2s\"\n", "lock_mode = \"best_effort\"\n");
  std::string c = cert("bot-ci"), old = cert("bot-old");
  start_sync();
  ASSERT_TRUE(eventually([&] { return !allowed(old); })) << testing::read_file(dir_.file("sync.err"));
  EXPECT_TRUE(allowed(c));
  sync_.stop();
  std::this_thread::sleep_for(3s);  // past locks_max_age
  EXPECT_TRUE(allowed(c));
  EXPECT_FALSE(allowed(old));  // the last good locks stay in force
  EXPECT_TRUE(status()["sync"]["stale_locks"].is_null());
}

}  // namespace
}  // namespace machineid
