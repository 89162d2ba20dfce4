#include "sshd_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace machineid::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace std::string_literals;

constexpr const char* kSshd = "/usr/sbin/sshd";
constexpr const char* kSsh = "/usr/bin/ssh";
// sshd's privilege-separation chroot; the system's own sshd uses it too, so
// it is created when missing and left in place.
constexpr const char* kPrivsepDir = "/run/sshd";
constexpr auto kStartTimeout = 10s;
constexpr auto kCommandTimeout = 30s;
constexpr auto kPoll = 20ms;
constexpr int kPortAttempts = 5;

// Polls `ready` until it holds or `timeout` passes.
template <class F>
bool poll_until(F ready, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!ready()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPoll);
  }
  return true;
}

bool unix_socket_accepts(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

bool loopback_port_accepts(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// A port that was free a moment ago: sshd may still lose it to someone
// else, so the caller retries on a bind failure.
int free_loopback_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

std::uintmax_t size_of(const std::string& path) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

std::string read_from(const std::string& path, std::uintmax_t offset) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

bool Process::start(const std::vector<std::string>& argv, const std::string& out_path,
                    const std::string& err_path, const std::vector<std::string>& extra_env) {
  if (pid_ > 0 || argv.empty()) return false;
  // Everything the child needs is made before fork(): after it the child
  // only makes async-signal-safe calls.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_store(extra_env);
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    bool overridden = false;
    for (const auto& x : extra_env)
      overridden |= entry.substr(0, entry.find('=') + 1) == std::string_view(x).substr(0, x.find('=') + 1);
    if (!overridden) env_store.emplace_back(entry);
  }
  std::vector<char*> env;
  for (auto& e : env_store) env.push_back(e.data());
  env.push_back(nullptr);
  int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int err = err_path == out_path
                ? out
                : open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  pid_t parent = getpid();
  pid_t pid = in < 0 || out < 0 || err < 0 ? -1 : fork();
  if (pid == 0) {
    setpgid(0, 0);
    // SIGKILL because a frozen (SIGSTOPped) daemon would not act on SIGTERM.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, nullptr);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(127);
    execve(args[0], args.data(), env.data());
    _exit(127);
  }
  if (pid > 0) setpgid(pid, pid);  // also here, so the group exists before any kill(-pid)
  if (in >= 0) close(in);
  if (out >= 0) close(out);
  if (err >= 0 && err != out) close(err);
  if (pid < 0) return false;
  pid_ = pid;
  return true;
}

bool Process::running() const { return pid_ > 0 && !wait_exit(0ms); }

bool Process::wait_exit(std::chrono::milliseconds timeout) const {
  if (pid_ <= 0) return true;
  // WNOWAIT leaves the child a zombie, so its pid (and group id) cannot be
  // reused before stop() has dealt with the group.
  return poll_until(
      [&] {
        siginfo_t info{};
        return waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
               info.si_pid != 0;
      },
      timeout);
}

void Process::signal(int sig) const {
  if (pid_ > 0) kill(pid_, sig);
}

int Process::stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  if (!wait_exit(0ms)) {
    kill(-pid_, SIGTERM);
    kill(-pid_, SIGCONT);
    if (!wait_exit(grace)) kill(-pid_, SIGKILL);
  }
  // Whatever else the group still holds (the leader is a zombie, so the
  // group id is still ours).
  kill(-pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

SshdHarness::SshdHarness(std::string bin_dir, HarnessOptions options)
    : bin_dir_(std::move(bin_dir)), options_(std::move(options)) {
  std::string tmpl = "/run/machineid-test.XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    setup_error_ =
        "cannot create a directory under /run (root needed): " + std::string(std::strerror(errno));
    return;
  }
  dir_ = tmpl;
  // mkdtemp's 0700 would keep AuthorizedPrincipalsCommandUser (nobody) from
  // the helper and the socket.
  chmod(dir_.c_str(), 0755);
  // Policy under etc/ as under /etc/machineid, apart from the files the
  // harness and the daemon keep writing (logs, audit, ssh output): the
  // daemon watches the policy directories and would reload on their churn.
  for (const char* sub : {"etc", "etc/roles.d", "etc/locks.d", "state"})
    mkdir(file(sub).c_str(), 0755);

  std::error_code ec;
  fs::copy_file(bin_dir_ + "/machineid-principals", file("machineid-principals"),
                fs::copy_options::overwrite_existing, ec);
  if (ec) {
    setup_error_ = "cannot copy " + bin_dir_ + "/machineid-principals: " + ec.message();
    return;
  }
  chmod(file("machineid-principals").c_str(), 0755);

  ca_ = keygen_.make_key("ca");
  write_file(user_ca_file(), read_file(ca_ + ".pub"));
  run_ok({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test host", "-f",
          file("ssh_host_ed25519_key")});
  write_krl("");

  write_file(file("etc/verifierd.toml"),
             std::string("[cluster]\nname = \"") + kClusterName + "\"\nuser_ca_file = \"" +
                 user_ca_file() + "\"\n\n[node]\nname = \"" + kNodeName +
                 "\"\nlabels = " + kNodeLabels + "\n\n[policy]\nroles_dir = \"" +
                 file("etc/roles.d") + "\"\nlocks_dir = \"" + file("etc/locks.d") +
                 "\"\nrevoked_keys = \"" + krl_file() + "\"\n\n[daemon]\nsocket = \"" +
                 socket() + "\"\nstate_dir = \"" + file("state") +
                 "\"\nclient_user = \"nobody\"\n\n[audit]\njournald = false\nfile = \"" +
                 file("audit.jsonl") + "\"\n" + options_.daemon_toml);
}

SshdHarness::~SshdHarness() {
  sshd_.stop();
  daemon_.stop();
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

::testing::AssertionResult SshdHarness::failure(const std::string& what) const {
  return ::testing::AssertionFailure() << what << "\n" << logs_since({});
}

::testing::AssertionResult SshdHarness::start() {
  if (auto r = start_daemon(); !r) return r;
  return start_sshd();
}

::testing::AssertionResult SshdHarness::start_daemon() {
  if (!setup_error_.empty()) return ::testing::AssertionFailure() << setup_error_;
  if (daemon_.running()) return failure("the daemon already runs");
  daemon_.stop();  // reaps an instance that exited on its own
  std::string log = file("verifierd.log");
  std::string daemon = bin_dir_ + "/machineid-verifierd";
  // The previous instance's CA copy must not count as this one's.
  unlink(sshd_ca_file().c_str());
  if (!daemon_.start({daemon, "--foreground", "--config", file("etc/verifierd.toml")}, log, log,
                     options_.daemon_env))
    return failure("cannot start " + daemon);
  bool up = poll_until(
      [&] {
        return !daemon_.running() || (unix_socket_accepts(socket()) && fs::exists(sshd_ca_file()));
      },
      kStartTimeout);
  if (!daemon_.running()) {
    daemon_.stop();
    return failure("machineid-verifierd exited during start-up");
  }
  if (!up) return failure("machineid-verifierd: no socket and user_ca.pub.sshd within 10 s");
  return ::testing::AssertionSuccess();
}

void SshdHarness::stop_daemon() { daemon_.stop(); }

void SshdHarness::signal_daemon(int sig) const { daemon_.signal(sig); }

::testing::AssertionResult SshdHarness::ensure_privsep_dir() {
  if (mkdir(kPrivsepDir, 0755) != 0 && errno != EEXIST)
    return ::testing::AssertionFailure() << "cannot create " << kPrivsepDir << ": " << std::strerror(errno);
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult SshdHarness::start_sshd() {
  if (auto made = ensure_privsep_dir(); !made) return made;
  std::string log = file("sshd.log");
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    port_ = free_loopback_port();
    std::string extra;
    for (const auto& line : options_.sshd_config) extra += line + "\n";
    write_file(file("sshd_config"),
               extra + "HostKey " + file("ssh_host_ed25519_key") + "\nListenAddress 127.0.0.1\nPort " +
                   std::to_string(port_) + "\nPidFile none\nTrustedUserCAKeys " + sshd_ca_file() +
                   "\nAuthorizedPrincipalsCommand " + file("machineid-principals") + " --socket " +
                   socket() +
                   " %u %t %k\nAuthorizedPrincipalsCommandUser nobody\n"
                   "AuthorizedKeysFile none\nPubkeyAuthentication yes\n"
                   "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                   "UsePAM no\nPermitRootLogin prohibit-password\nLogLevel VERBOSE\n"
                   // Many quick logins from one address must not be throttled,
                   // and a stuck attempt must end before the test gives up.
                   "MaxStartups 100\nLoginGraceTime 30\n");
    std::uintmax_t mark = size_of(log);
    if (!sshd_.start({kSshd, "-D", "-e", "-f", file("sshd_config")}, log, log, options_.sshd_env))
      return failure(std::string("cannot start ") + kSshd);
    bool up =
        poll_until([&] { return !sshd_.running() || loopback_port_accepts(port_); }, kStartTimeout);
    if (sshd_.running() && up) return ::testing::AssertionSuccess();
    sshd_.stop();
    // Someone took the port between our probe and sshd's bind: try another.
    if (read_from(log, mark).find("Address already in use") == std::string::npos) break;
  }
  return failure("sshd did not start listening on 127.0.0.1");
}

CommandResult SshdHarness::run_captured(const std::vector<std::string>& argv) const {
  std::string out = file("command.out"), err = file("command.err");
  unlink(out.c_str());
  unlink(err.c_str());
  CommandResult result;
  auto begin = std::chrono::steady_clock::now();
  Process child;
  if (child.start(argv, out, err)) {
    bool finished = child.wait_exit(kCommandTimeout);
    result.status = child.stop();
    if (!finished) result.status = -1;
  }
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - begin);
  result.out = read_file(out);
  result.err = read_file(err);
  return result;
}

CommandResult SshdHarness::ssh(const std::string& key, const std::string& cert, const std::string& login,
                               const std::string& command, const std::vector<std::string>& extra) const {
  return run_captured(ssh_argv(key, cert, login, command, extra));
}

std::vector<std::string> SshdHarness::ssh_argv(const std::string& key, const std::string& cert,
                                               const std::string& login, const std::string& command,
                                               const std::vector<std::string>& extra) const {
  std::vector<std::string> argv = {kSsh, "-F", "/dev/null", "-i", key, "-p", std::to_string(port_)};
  // IdentityAgent=none: a developer's agent keys must not take part.
  // LogLevel=ERROR: no host-key notices on stderr, yet "Permission denied".
  for (const std::string& option :
       {"CertificateFile=" + cert, "IdentitiesOnly=yes"s, "IdentityAgent=none"s, "BatchMode=yes"s,
        "StrictHostKeyChecking=no"s, "UserKnownHostsFile=/dev/null"s, "LogLevel=ERROR"s,
        "ConnectTimeout=5"s})
    argv.insert(argv.end(), {"-o", option});
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(login + "@127.0.0.1");
  if (!command.empty()) argv.push_back(command);
  return argv;
}

CommandResult SshdHarness::ask_helper(const std::string& login, const std::string& cert) const {
  std::istringstream in(read_file(cert));
  std::string type, b64;
  in >> type >> b64;
  return run_captured({file("machineid-principals"), "--socket", socket(), login, type, b64});
}

void SshdHarness::write_atomically(const std::string& path, const std::string& content) const {
  // Staged outside the policy directories: a stray file there could be read
  // as a resource, and would wake the daemon once more.
  std::string staging = file(".staging");
  write_file(staging, content);
  EXPECT_EQ(rename(staging.c_str(), path.c_str()), 0) << path << ": " << std::strerror(errno);
}

void SshdHarness::write_role(const std::string& name, const std::string& yaml) const {
  write_atomically(file("etc/roles.d/" + name + ".yaml"), yaml);
}

void SshdHarness::write_lock(const std::string& name, const std::string& yaml) const {
  write_atomically(file("etc/locks.d/" + name + ".yaml"), yaml);
}

void SshdHarness::write_krl(const std::string& spec) {
  // Key ids and serials are revoked per CA, so the spec is scoped to ours.
  std::string krl = keygen_.make_krl("krl" + std::to_string(++krl_count_), spec, ca_ + ".pub");
  write_atomically(krl_file(), read_file(krl));
}

void SshdHarness::write_user_ca(const std::string& content) const {
  write_atomically(user_ca_file(), content);
}

std::uintmax_t SshdHarness::audit_mark() const { return size_of(file("audit.jsonl")); }

std::vector<std::string> SshdHarness::audit_lines_since(std::uintmax_t mark) const {
  std::string text = read_from(file("audit.jsonl"), mark);
  std::vector<std::string> lines;
  // A line without its newline is still being written.
  for (std::size_t begin = 0, end; (end = text.find('\n', begin)) != std::string::npos;
       begin = end + 1)
    if (end > begin) lines.push_back(text.substr(begin, end - begin));
  return lines;
}

SshdHarness::LogMarks SshdHarness::log_marks() const {
  return {size_of(file("sshd.log")), size_of(file("verifierd.log"))};
}

std::string SshdHarness::logs_since(const LogMarks& marks) const {
  if (dir_.empty()) return "";
  return "--- sshd log ---\n" + read_from(file("sshd.log"), marks.sshd) +
         "--- machineid-verifierd log ---\n" + read_from(file("verifierd.log"), marks.daemon);
}

}  // namespace machineid::testing
