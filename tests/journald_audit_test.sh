#!/usr/bin/env bash
# Decisions reach a real journald with the fields of SPEC §7. Runs in a
# private mount namespace with its own /run/systemd and /run/log, so the
# machine's journal (if any) is neither used nor touched. Needs root.
# usage: journald_audit_test.sh BIN_DIR
set -euo pipefail
bin=$(cd "${1:?usage: journald_audit_test.sh BIN_DIR}" && pwd)
if [ "${MID_IN_NAMESPACE:-}" != 1 ]; then
  exec unshare -m --propagation private env MID_IN_NAMESPACE=1 "$0" "$@"
fi
journald=/lib/systemd/systemd-journald
[ -x "$journald" ] || { echo "FAIL: $journald missing"; exit 1; }

dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$dir"' EXIT
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/log && mount -t tmpfs tmpfs /run/log
"$journald" & pids+=($!)
for _ in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done

cd "$dir"
ssh-keygen -q -t ed25519 -N '' -f ca
ssh-keygen -q -t ed25519 -N '' -f key
ssh-keygen -q -s ca -I bot-ci -n root -z 42 -V -5m:+1h \
  -O 'extension:teleport-roles={"version":"v1","roles":["ci"]}' -O extension:impersonator=bot-ci \
  -O extension:bot-instance-id@goteleport.com=5b3c key.pub
mkdir roles.d locks.d
printf 'kind: role\nversion: v7\nmetadata: {name: ci}\nspec:\n  allow:\n    logins: [root]\n    node_labels: {"*": "*"}\n' >roles.d/ci.yaml
cat >verifierd.toml <<TOML
[cluster]
name = "example.teleport.sh"
user_ca_file = "$dir/ca.pub"
[policy]
roles_dir = "$dir/roles.d"
locks_dir = "$dir/locks.d"
revoked_keys = "$dir/revoked.krl"
[daemon]
socket = "$dir/verifierd.sock"
client_user = "root"
[audit]
journald = true
TOML
"$bin/machineid-verifierd" --foreground --config verifierd.toml 2>daemon.log & pids+=($!)
for _ in $(seq 100); do [ -S verifierd.sock ] && break; sleep 0.05; done
read -r type b64 _ <key-cert.pub
"$bin/machineid-principals" --socket verifierd.sock root "$type" "$b64" >/dev/null
"$bin/machineid-principals" --socket verifierd.sock daemon "$type" "$b64" >/dev/null 2>&1 || true
# A key id with an escape sequence and a newline, from the real ssh-keygen.
ssh-keygen -q -t ed25519 -N '' -f evil
ssh-keygen -q -s ca -I $'evil\e[31m\nline' -n postgres -V -5m:+1h evil.pub
read -r etype eb64 _ <evil-cert.pub
"$bin/machineid-principals" --socket verifierd.sock postgres "$etype" "$eb64" >/dev/null 2>&1 || true
sleep 0.3
journalctl --sync 2>/dev/null || true

passed=0 failed=0
expect() {  # event field=value...
  local event=$1; shift
  local entry
  entry=$(journalctl --no-pager -o export "MACHINEID_EVENT=$event" SYSLOG_IDENTIFIER=machineid)
  for want in "$@"; do
    if grep -qxF -- "$want" <<<"$entry"; then
      passed=$((passed + 1))
    else
      failed=$((failed + 1))
      echo "FAIL: $event: no $want in:"; sed 's/^/    /' <<<"$entry"
    fi
  done
}
fp=$(ssh-keygen -l -E sha256 -f ca.pub | cut -d' ' -f2)
expect login.allow MACHINEID_LOGIN=root MACHINEID_KEY_ID=bot-ci MACHINEID_BOT=ci MACHINEID_BOT_INSTANCE=5b3c \
  MACHINEID_ROLES=ci MACHINEID_SERIAL=42 "MACHINEID_CA_FP=$fp" MACHINEID_REASON=ok MACHINEID_SOURCE= \
  MESSAGE_ID=4f1c2a7e9b3d4e0a8c6b5d2e1f0a9b8c PRIORITY=6
expect login.deny MACHINEID_LOGIN=daemon MACHINEID_REASON=principal MESSAGE_ID=9a8b7c6d5e4f40319281726354a5b6c7 \
  PRIORITY=4
certfp=$(ssh-keygen -l -E sha256 -f key.pub | cut -d' ' -f2)
expect login.allow "MACHINEID_CERT_FP=$certfp"
# Certificate text reaches journald fields escaped, and machineidctl audit
# prints it escaped.
expect login.deny 'MACHINEID_KEY_ID=evil\033[31m\012line' MACHINEID_LOGIN=postgres
if "$bin/machineidctl" audit --config verifierd.toml | grep -q $'\e'; then
  failed=$((failed + 1)); echo "FAIL: machineidctl audit printed a raw escape sequence"
else
  passed=$((passed + 1))
fi
# machineidctl audit reads the same events back from the journal.
if "$bin/machineidctl" audit --config verifierd.toml --json | grep -q '"event":"login.allow","login":"root","key_id":"bot-ci"'; then
  passed=$((passed + 1))
else
  failed=$((failed + 1)); echo "FAIL: machineidctl audit did not read login.allow back from the journal"
fi
if "$bin/machineidctl" audit --config verifierd.toml --bot nobody-such | grep -q login; then
  failed=$((failed + 1)); echo "FAIL: machineidctl audit --bot did not filter"
else
  passed=$((passed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
