// getpwnam through libnss_machineid next to glibc's own files module, on
// the same names, in one run, with 10 and with 100 000 users.
//
// Both modules are called at their entry points (_nss_*_getpwnam_r), so
// glibc's dispatch costs neither. glibc 2.36 keeps nss_files inside libc.so.6
// (libnss_files.so.2 is an empty stub) and it reads /etc/passwd, always: so
// the benchmark enters a private mount namespace and bind-mounts a generated
// passwd file over /etc/passwd there (root needed; nothing outside the
// process sees it). libnss_machineid reads a users.db of the same users.
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <nss.h>
#include <pwd.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "machineid/userdb.h"

namespace {

using GetpwnamR = nss_status (*)(const char*, passwd*, char*, size_t, int*);

// The names looked up, spread evenly over the file, so that nss_files
// scans half of it on average.
constexpr std::size_t kProbes = 1024;

struct Fixture {
  std::string passwd_path, db_path;
  std::vector<std::string> probes;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "nss_bench: %s\n", what.c_str());
  std::exit(2);
}

std::string name_of(std::size_t i) { return "user" + std::to_string(100000 + i); }

// Files for `entries` users in MID_BENCH_DIR, made once.
const Fixture& fixture(std::size_t entries) {
  static std::map<std::size_t, Fixture> made;
  auto it = made.find(entries);
  if (it != made.end()) return it->second;
  const char* dir = std::getenv("MID_BENCH_DIR");
  if (dir == nullptr) die("run it through make bench (MID_BENCH_DIR)");
  Fixture f;
  f.passwd_path = std::string(dir) + "/passwd." + std::to_string(entries);
  f.db_path = std::string(dir) + "/users.db." + std::to_string(entries);
  std::ofstream passwd(f.passwd_path);
  // root first, as in every real /etc/passwd.
  passwd << "root:x:0:0:root:/root:/bin/bash\n";
  machineid::UserDb db;
  for (std::size_t i = 0; i < entries; ++i) {
    std::uint32_t uid = static_cast<std::uint32_t>(200000 + i);
    passwd << name_of(i) << ":x:" << uid << ":" << uid << "::/home/" << name_of(i) << ":/bin/sh\n";
    machineid::HostUser u;
    u.login = name_of(i);
    u.uid = uid;
    u.home = "/home/" + u.login;
    u.shell = "/bin/sh";
    db.users.push_back(std::move(u));
  }
  if (!passwd.flush()) die(f.passwd_path + ": cannot write");
  if (auto s = machineid::write_userdb(f.db_path, db); !s.ok()) die(s.error().message);
  for (std::size_t k = 0; k < kProbes; ++k) f.probes.push_back(name_of(k * entries / kProbes));
  return made.emplace(entries, std::move(f)).first->second;
}

// /etc/passwd, in this process's own mount namespace, is `path`.
void use_as_etc_passwd(const std::string& path) {
  static bool isolated = false;
  static std::string mounted;
  if (!isolated) {
    if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      die("needs root: a private mount namespace for nss_files' /etc/passwd");
    isolated = true;
  }
  if (mounted == path) return;
  if (!mounted.empty()) umount2("/etc/passwd", 0);
  if (mount(path.c_str(), "/etc/passwd", nullptr, MS_BIND, nullptr) != 0)
    die("cannot bind-mount " + path);
  mounted = path;
}

GetpwnamR files_getpwnam() {
  static auto fn =
      reinterpret_cast<GetpwnamR>(dlsym(dlopen("libc.so.6", RTLD_NOW), "_nss_files_getpwnam_r"));
  if (fn == nullptr) die("_nss_files_getpwnam_r not found in libc.so.6");
  return fn;
}

GetpwnamR machineid_getpwnam() {
  static auto fn = [] {
    void* module = dlopen(MID_NSS_MODULE, RTLD_NOW | RTLD_LOCAL);
    if (module == nullptr) die(dlerror());
    return reinterpret_cast<GetpwnamR>(dlsym(module, "_nss_machineid_getpwnam_r"));
  }();
  return fn;
}

void run(benchmark::State& state, GetpwnamR getpwnam_r, const Fixture& f) {
  passwd pw{};
  char buf[1024];
  std::size_t k = 0;
  for (auto _ : state) {
    int e = 0;
    const std::string& name = f.probes[k++ % kProbes];
    if (getpwnam_r(name.c_str(), &pw, buf, sizeof buf, &e) != NSS_STATUS_SUCCESS ||
        name != pw.pw_name) {
      state.SkipWithError(("lookup of " + name + " failed").c_str());
      break;
    }
    benchmark::DoNotOptimize(pw.pw_uid);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Files(benchmark::State& state) {
  const Fixture& f = fixture(static_cast<std::size_t>(state.range(0)));
  use_as_etc_passwd(f.passwd_path);
  run(state, files_getpwnam(), f);
}

void BM_Machineid(benchmark::State& state) {
  const Fixture& f = fixture(static_cast<std::size_t>(state.range(0)));
  // Not sshd: the module never asks the daemon here. (The bypass variable
  // would make it answer nothing at all.)
  setenv("MACHINEID_NSS_DB", f.db_path.c_str(), 1);
  unsetenv("MACHINEID_NSS_BYPASS_DAEMON");
  run(state, machineid_getpwnam(), f);
}

BENCHMARK(BM_Files)->Name("files")->Arg(10)->Arg(100000);
BENCHMARK(BM_Machineid)->Name("machineid")->Arg(10)->Arg(100000);

}  // namespace

BENCHMARK_MAIN();
