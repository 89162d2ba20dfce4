// The home directory of a host user, made on its first login.
#pragma once

#include <string>

#include "machineid/result.h"

namespace machineid::pam {

// Creates the home directory named by `login`'s passwd entry when nothing
// is there yet: mode 0700, owned by the user and their primary group,
// filled with a copy of `skel` (regular files, directories and symbolic
// links, none of them followed; a missing `skel` copies nothing). Whatever
// already exists at that path is left alone. Returns an error naming the
// path and the failing step; the home itself is still handed to the user
// when only part of the skeleton could be copied.
Status create_home(const std::string& login, const std::string& skel);

}  // namespace machineid::pam
