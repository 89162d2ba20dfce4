// Everything a decision reads, loaded from the files the configuration
// names: CA keys, roles and locks, the KRL.
#pragma once

#include <sys/types.h>

#include <ctime>
#include <memory>
#include <optional>
#include <string>

#include "machineid/ca.h"
#include "machineid/config.h"
#include "machineid/krl.h"
#include "machineid/policy.h"
#include "machineid/resources.h"
#include "machineid/result.h"

namespace machineid {

struct NodePolicy {
  Config config;
  uid_t sync_owner = 0;  // sync_owner(config), as the load found it
  CaSet cas;
  Policy policy;
  // The KRL, if one is configured and present. When krl_error is set the
  // KRL could not be read or parsed and every certificate is denied. Shared:
  // a reload whose KRL file did not change keeps this one, rather than
  // holding two copies of a large list while it loads the same bytes again.
  std::shared_ptr<const Krl> krl;
  std::optional<std::string> krl_error;
  // Which file `krl` was read from, as it was then.
  struct FileVersion {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    timespec modified{}, changed{};
    bool operator==(const FileVersion& o) const {
      return device == o.device && inode == o.inode && size == o.size && modified.tv_sec == o.modified.tv_sec &&
             modified.tv_nsec == o.modified.tv_nsec && changed.tv_sec == o.changed.tv_sec &&
             changed.tv_nsec == o.changed.tv_nsec;
    }
  };
  std::optional<FileVersion> krl_version;
};

// Loads CA keys, roles, locks and the KRL named by `config`, as the daemon
// does. A CA file that does not load is an error; roles and locks that do
// not load are recorded in the policy (see load_policy); a missing KRL file
// means no revocations, an unreadable or corrupt one is recorded in
// krl_error (deny all).
Result<NodePolicy> load_node_policy(Config config);
// (Re)loads np.krl / np.krl_error from np.config.policy.revoked_keys, with
// the rules above.
void load_revocations(NodePolicy& np);
// (Re)loads np.policy from the configured directories. In best_effort lock
// mode, locks that did not load whole are replaced by `last_good`'s locks
// (the errors stay recorded); in strict mode the decision denies instead.
void load_roles_and_locks(NodePolicy& np, const NodePolicy* last_good);

// The user CA file in force: with cluster.user_ca_url set, machineid-sync's
// copy once it has fetched one (user_ca_file is then only what the node
// starts with), else user_ca_file.
std::string user_ca_path(const Config& config);
// machineid-sync's uid ([sync] user), looked up once per load so that the
// daemon's event loop never waits on a directory service; root's when the
// account is unknown, so that only root's files are trusted there.
uid_t sync_owner(const Config& config);
// StrictModes for a file of the policy: machineid-sync's files may be owned
// by its user (`owner`, or looked up), everything else by root (or this
// process's user).
Status check_policy_file(const Config& config, const std::string& path, uid_t owner);
Status check_policy_file(const Config& config, const std::string& path);
// The roles and locks streams machineid-sync keeps, for load_policy.
SyncedFiles synced_files(const Config& config);

}  // namespace machineid
