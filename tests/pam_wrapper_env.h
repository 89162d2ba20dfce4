// What the PAM tests share about running programs under pam_wrapper.
#pragma once

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

}  // namespace machineid::testing
