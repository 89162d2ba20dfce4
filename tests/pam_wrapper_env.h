// What the PAM tests share about running programs under pam_wrapper.
#pragma once

#include <sched.h>
#include <sys/mount.h>

#include <string>
#include <vector>

namespace machineid::testing {

// pam_wrapper works in /tmp/pam.<letter>, the letter drawn from the pid and
// taken when free: two processes starting at once can take the same one,
// and the first to exit deletes it under the other. A /tmp of the test's
// own (a tmpfs in a private mount namespace, inherited by everything it
// starts) keeps the processes of tests running in parallel apart. Call it
// before anything is made under /tmp; false when it cannot be had.
inline bool private_tmp() {
  static const bool ok = unshare(CLONE_NEWNS) == 0 &&
                         mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
                         mount("tmpfs", "/tmp", "tmpfs", 0, "mode=1777") == 0;
  return ok;
}

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

// ASan refuses pam_wrapper's RTLD_DEEPBIND. pam_wrapper 1.1.4 reads the
// first name, later releases the one their manual gives.
inline const std::vector<std::string> kNoDeepBind = {"UID_WRAPPER_DISABLE_DEEPBIND=1",
                                                     "PAM_WRAPPER_DISABLE_DEEPBIND=1"};

}  // namespace machineid::testing
