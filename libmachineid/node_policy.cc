// Loading what a decision reads; decide() itself does no I/O.
#include "machineid/node_policy.h"

#include <sys/stat.h>

#include <cerrno>

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

void load_roles_and_locks(NodePolicy& np, const NodePolicy* last_good) {
  np.policy = load_policy(np.config.policy.roles_dir, np.config.policy.locks_dir);
  if (np.config.policy.lock_mode == LockMode::best_effort && !np.policy.lock_errors.empty() && last_good) {
    np.policy.locks = last_good->policy.locks;
    np.policy.lock_index = last_good->policy.lock_index;
  }
}

Result<NodePolicy> load_node_policy(Config config) {
  NodePolicy np;
  MID_TRY(cas, CaSet::load(config.cluster.user_ca_file, config.cluster.name));
  np.cas = std::move(cas);
  np.config = std::move(config);
  load_roles_and_locks(np, nullptr);
  load_revocations(np);
  return np;
}

}  // namespace machineid
