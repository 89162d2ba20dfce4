// Reading Teleport role and lock resources from YAML, as `tctl get` prints
// them, into a Policy. Every byte is untrusted: YAML is bounded (bytes,
// documents, nodes after alias expansion, depth), duplicate mapping keys are
// errors, and a document that does not load hurts only what it defines.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "machineid/policy.h"
#include "machineid/result.h"

namespace machineid {

// A `tctl get locks` stream of 100 000 locks is about 19 MB.
inline constexpr std::size_t kMaxResourceFileBytes = 64 * 1024 * 1024;
inline constexpr std::size_t kMaxResources = 250000;
// Nodes of one file once every alias is expanded, and of those, how many
// aliases may add: a "billion laughs" file is refused before it is built.
inline constexpr std::size_t kMaxYamlNodes = 4'000'000;
inline constexpr std::size_t kMaxYamlAliasNodes = 100'000;
inline constexpr std::size_t kMaxYamlDepth = 64;

// What a file that does not parse at all is taken to have held: its roles
// (their holders are then denied as undefined) or its locks (a lock that
// cannot be read is never silently absent).
enum class ResourceFile { roles, locks };

// Parses one file's YAML documents into `into`: `kind: role` (v3 to v9) into
// roles, `kind: lock` into locks, others skipped with a notice. A document
// that does not load is recorded (role_errors and broken_roles, or
// lock_errors) and the others still load; a file that is not YAML, or too
// large, is recorded whole. Returns the first error (naming source, line and
// field), or ok when everything loaded.
Status parse_resources(std::string_view yaml, std::string_view source, Policy& into,
                       ResourceFile kind = ResourceFile::roles);

// Loads every *.yaml / *.yml file (not hidden ones) of roles_dir and
// locks_dir, in name order, into one Policy; a missing directory is empty.
// Errors are recorded in the Policy as parse_resources records them (an
// unreadable roles_dir or locks_dir as a whole), never returned: the caller
// decides from the Policy what they deny.
//
// `synced` names the files machineid-sync keeps (absent until its first
// fetch), read after the directories and trusted when owned by root or by
// `synced.owner`, the sync service's user.
struct SyncedFiles {
  std::string roles, locks;  // "": none
  uid_t owner = 0;
};
Policy load_policy(const std::string& roles_dir, const std::string& locks_dir, const SyncedFiles& synced = {});

}  // namespace machineid
