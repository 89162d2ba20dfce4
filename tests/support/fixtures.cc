#include "fixtures.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "machineid/encoding.h"

extern char** environ;

namespace machineid::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/machineid-test.XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) std::abort();
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

RunResult run(const std::vector<std::string>& argv, const std::string& stdin_text) {
  int out[2], in[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(in, O_CLOEXEC) != 0) std::abort();
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, out[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_store = {"TZ=UTC", "LC_ALL=C"};
  for (char** e = environ; *e; ++e)
    if (std::string_view(*e).rfind("TZ=", 0) != 0 && std::string_view(*e).rfind("LC_ALL=", 0) != 0)
      env_store.emplace_back(*e);
  std::vector<char*> env;
  for (auto& e : env_store) env.push_back(e.data());
  env.push_back(nullptr);
  pid_t pid;
  RunResult result;
  if (posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), env.data()) != 0) {
    result.output = "cannot run " + argv[0];
    close(out[0]), close(out[1]), close(in[0]), close(in[1]);
    posix_spawn_file_actions_destroy(&fa);
    return result;
  }
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  close(in[0]);
  if (!stdin_text.empty()) {
    ssize_t n = write(in[1], stdin_text.data(), stdin_text.size());
    (void)n;
  }
  close(in[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) result.output.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string run_ok(const std::vector<std::string>& argv) {
  RunResult r = run(argv);
  std::string cmd;
  for (const auto& a : argv) cmd += a + " ";
  EXPECT_EQ(r.status, 0) << cmd << "\n" << r.output;
  return r.status == 0 ? r.output : "";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

ByteVector read_key_blob(const std::string& path) {
  std::istringstream in(read_file(path));
  std::string type, b64;
  in >> type >> b64;
  auto blob = base64_decode(b64);
  EXPECT_TRUE(blob.ok()) << path;
  return blob.ok() ? *blob : ByteVector{};
}

std::string Keygen::make_key(const std::string& name, const std::string& type, int bits) {
  std::string path = dir_.file(name);
  std::vector<std::string> argv = {"ssh-keygen", "-q", "-t", type, "-N", "", "-C", name, "-f", path};
  if (bits > 0) {
    argv.push_back("-b");
    argv.push_back(std::to_string(bits));
  }
  run_ok(argv);
  return path;
}

std::string Keygen::sign(const CertSpec& spec) {
  // ssh-keygen writes "<key>-cert.pub"; sign a private copy so one user key
  // can carry many certificates.
  std::string base = dir_.file("cert" + std::to_string(++counter_));
  write_file(base + ".pub", read_file(spec.key));
  std::vector<std::string> argv = {"ssh-keygen", "-q", "-s", spec.ca, "-I", spec.identity,
                                   "-V", spec.validity, "-z", std::to_string(spec.serial)};
  if (!spec.principals.empty()) {
    std::string joined;
    for (const auto& p : spec.principals) joined += (joined.empty() ? "" : ",") + p;
    argv.insert(argv.end(), {"-n", joined});
  }
  if (spec.host) argv.push_back("-h");
  if (!spec.signature_algorithm.empty()) argv.insert(argv.end(), {"-t", spec.signature_algorithm});
  if (spec.clear_options) argv.insert(argv.end(), {"-O", "clear"});
  for (const auto& o : spec.options) argv.insert(argv.end(), {"-O", o});
  argv.push_back(base + ".pub");
  run_ok(argv);
  return base + "-cert.pub";
}

std::string Keygen::make_krl(const std::string& name, const std::string& spec, const std::string& ca_pub) {
  std::string spec_path = dir_.file(name + ".spec");
  std::string krl_path = dir_.file(name);
  write_file(spec_path, spec);
  std::vector<std::string> argv = {"ssh-keygen", "-q", "-k", "-f", krl_path};
  if (!ca_pub.empty()) argv.insert(argv.end(), {"-s", ca_pub});
  argv.push_back(spec_path);
  run_ok(argv);
  return krl_path;
}

bool Keygen::keygen_says_revoked(const std::string& krl, const std::string& key_path) {
  RunResult r = run({"ssh-keygen", "-Q", "-f", krl, key_path});
  return r.status != 0 && r.output.find("REVOKED") != std::string::npos;
}

}  // namespace machineid::testing
