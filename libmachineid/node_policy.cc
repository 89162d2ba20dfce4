// Loading what a decision reads; decide() itself does no I/O.
#include "machineid/node_policy.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "machineid/io.h"
#include "machineid/resources.h"

namespace machineid {

void load_revocations(NodePolicy& np) {
  np.krl.reset();
  np.krl_error.reset();
  const std::string& path = np.config.policy.revoked_keys;
  struct stat st {};
  // No KRL file means no revocations; anything else that keeps us from
  // reading it denies every certificate, as sshd's RevokedKeys does.
  if (path.empty() || (stat(path.c_str(), &st) != 0 && errno == ENOENT)) return;
  auto krl = Krl::load(path);
  if (krl.ok()) {
    np.krl = std::make_shared<const Krl>(std::move(*krl));
  } else {
    np.krl_error = krl.error().message;
  }
}

uid_t sync_owner(const Config& config) {
  std::vector<char> buf(4096);
  passwd pw{}, *found = nullptr;
  if (getpwnam_r(config.sync.user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return 0;
  return found->pw_uid;
}

namespace {

bool in_sync_dir(const Config& config, const std::string& path) {
  return sync_enabled(config) && (path == config.sync.dir || path.starts_with(config.sync.dir + "/"));
}

}  // namespace

std::string user_ca_path(const Config& config) {
  if (!config.cluster.user_ca_url) return config.cluster.user_ca_file;
  std::string synced = sync_path(config, kSyncCaFile);
  struct stat st {};
  return stat(synced.c_str(), &st) == 0 || errno != ENOENT ? synced : config.cluster.user_ca_file;
}

Status check_policy_file(const Config& config, const std::string& path, uid_t owner) {
  return in_sync_dir(config, path) ? check_trusted_path(path, owner) : check_trusted_path(path);
}

Status check_policy_file(const Config& config, const std::string& path) {
  return check_policy_file(config, path, in_sync_dir(config, path) ? sync_owner(config) : 0);
}

SyncedFiles synced_files(const Config& config) {
  SyncedFiles files;
  if (config.sync.roles_url) files.roles = sync_path(config, kSyncRolesFile);
  if (config.sync.locks_url) files.locks = sync_path(config, kSyncLocksFile);
  if (!files.roles.empty() || !files.locks.empty()) files.owner = sync_owner(config);
  return files;
}

void load_roles_and_locks(NodePolicy& np, const NodePolicy* last_good) {
  np.policy = load_policy(np.config.policy.roles_dir, np.config.policy.locks_dir, synced_files(np.config));
  if (np.config.policy.lock_mode == LockMode::best_effort && !np.policy.lock_errors.empty() && last_good) {
    np.policy.locks = last_good->policy.locks;
    np.policy.lock_index = last_good->policy.lock_index;
  }
}

Result<NodePolicy> load_node_policy(Config config) {
  NodePolicy np;
  MID_TRY(cas, CaSet::load(user_ca_path(config), config.cluster.name));
  np.cas = std::move(cas);
  np.config = std::move(config);
  np.sync_owner = sync_owner(np.config);
  load_roles_and_locks(np, nullptr);
  load_revocations(np);
  return np;
}

}  // namespace machineid
