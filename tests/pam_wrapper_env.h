// What the PAM tests share about running programs under pam_wrapper.
#pragma once

#include <dlfcn.h>

#include <string>
#include <vector>

namespace machineid::testing {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

// ASan refuses pam_wrapper's RTLD_DEEPBIND. pam_wrapper 1.1.4 reads the
// first name, later releases the one their manual gives.
inline const std::vector<std::string> kNoDeepBind = {"UID_WRAPPER_DISABLE_DEEPBIND=1",
                                                     "PAM_WRAPPER_DISABLE_DEEPBIND=1"};

// What a program (sshd) needs in its environment to run under pam_wrapper,
// reading its PAM services from `service_dir`.
inline std::vector<std::string> pam_wrapper_env(const std::string& service_dir) {
  std::vector<std::string> env = {"PAM_WRAPPER=1", "PAM_WRAPPER_SERVICE_DIR=" + service_dir};
  if (kSanitized) {
    // The module carries ASan; sshd does not, so the runtime this test runs
    // with comes first, and sshd's own leaks are not ours to report.
    Dl_info info{};
    void* asan = dlsym(RTLD_DEFAULT, "__asan_init");
    std::string runtime = asan != nullptr && dladdr(asan, &info) != 0 ? info.dli_fname : "";
    env.push_back("LD_PRELOAD=" + runtime + " libpam_wrapper.so");
    env.push_back("ASAN_OPTIONS=detect_leaks=0");
    env.insert(env.end(), kNoDeepBind.begin(), kNoDeepBind.end());
  } else {
    env.push_back("LD_PRELOAD=libpam_wrapper.so");
  }
  return env;
}

}  // namespace machineid::testing
