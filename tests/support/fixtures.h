// Test fixtures made at test time by the real ssh-keygen.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "machineid/wire.h"

namespace machineid::testing {

// A fresh directory under $TMPDIR, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct RunResult {
  int status = -1;  // exit code, or -1 when killed by a signal
  std::string output;  // stdout and stderr together
};

// Runs argv (no shell) with TZ=UTC and returns its exit status and output.
RunResult run(const std::vector<std::string>& argv, const std::string& stdin_text = "");
// Like run(), but fails the current test (and returns "") unless it exits 0.
std::string run_ok(const std::vector<std::string>& argv);

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content);
// The blob of a "type base64 comment" key or certificate file.
ByteVector read_key_blob(const std::string& path);

struct CertSpec {
  std::string ca;       // CA private key path
  std::string key;      // user public key path (".pub")
  std::string identity = "bot-ci";
  std::vector<std::string> principals = {"root"};
  std::string validity = "-5m:+1h";  // ssh-keygen -V
  std::uint64_t serial = 1;
  std::vector<std::string> options;  // each passed as -O
  bool host = false;
  std::string signature_algorithm;  // ssh-keygen -t when signing
  bool clear_options = false;       // -O clear
};

// ssh-keygen in a private temporary directory.
class Keygen {
 public:
  // Makes a key pair and returns the private key path ("<dir>/<name>");
  // the public key is at "<path>.pub". type: ed25519, ecdsa, rsa.
  std::string make_key(const std::string& name, const std::string& type = "ed25519", int bits = 0);
  // Signs spec.key and returns the certificate path.
  std::string sign(const CertSpec& spec);
  // Builds a KRL with `ssh-keygen -k` from spec lines ("serial: 5",
  // "id: bot-x", "key: ...", "hash: SHA256:..."); `ca_pub` may be empty.
  std::string make_krl(const std::string& name, const std::string& spec, const std::string& ca_pub = "");
  // `ssh-keygen -Q -f krl cert`: true when ssh-keygen says the key is revoked.
  bool keygen_says_revoked(const std::string& krl, const std::string& key_path);
  const TempDir& dir() const { return dir_; }

 private:
  TempDir dir_;
  int counter_ = 0;
};

}  // namespace machineid::testing
