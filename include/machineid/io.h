// Reading and writing files at the edges of the core.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "machineid/result.h"

namespace machineid {

// Reads a whole regular file of at most `max_bytes`. It is opened without
// blocking (O_NONBLOCK) and refused unless fstat says it is a regular file,
// so a FIFO or a device planted under a policy name never stalls the reader.
// Errors name the path and the reason: Errc::limit when larger,
// Errc::transient when descriptors or memory ran out or a signal interrupted
// (worth retrying), Errc::io otherwise.
Result<std::string> read_file(const std::string& path, std::size_t max_bytes);

// sshd's StrictModes for a file the policy is made of: the file and every
// directory above it, up to `/` (along the path as written and along the
// path it resolves to), must be owned by root or by this process's effective
// uid and writable by neither group nor others. A directory writable by
// others is accepted only when it is owned by root and has the sticky bit
// (/tmp, say). An error names the path, the owner and mode found, and the fix.
machineid::Status check_trusted_path(const std::string& path);
// The same, trusting `also_trusted` as an owner besides root and the
// effective uid: root's tools checking a file the daemon's user keeps
// (user_ca_file, which the CA refresh rewrites).
machineid::Status check_trusted_path(const std::string& path, uid_t also_trusted);

// Replaces `path` atomically with `content`: writes a temporary file in the
// same directory, fsyncs it, renames it over `path` and fsyncs the directory.
// With Durability::until_reboot the two fsyncs are left out: readers and a
// process killed at any point still see the old file or the new one whole,
// but a power loss may lose the change (or, on some file systems, leave the
// file empty). For state that means nothing after a reboot.
enum class Durability { on_disk, until_reboot };
Status write_file_atomic(const std::string& path, const std::string& content, unsigned mode = 0644,
                         Durability durability = Durability::on_disk);

}  // namespace machineid
