#!/usr/bin/env bash
# Fleet test of the palhm role: three test hosts (systemd-nspawn, own netns,
# sshd, cron), reached by ansible over SSH. See tests/fleet/fleet.sh.
#
#   tests/fleet/run.sh            run the whole test (needs root)
#   FLEET_KEEP=1 tests/fleet/run.sh   leave the fleet up afterwards
#   FLEET_HOSTS=4 ...             more hosts
#
# Prints PASS/FAIL per check and "N passed, M failed"; exits 1 on any failure.
# The fleet is torn down on exit, whatever happened.
set -euo pipefail

FLEET_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$FLEET_DIR/../.." && pwd)"
FLEET="$FLEET_DIR/fleet.sh"
N="${FLEET_HOSTS:-3}"
OUT="${FLEET_OUT:-$REPO_ROOT/tests/output/fleet}"
LOGS="$OUT/logs"
FLEET_STATE="${FLEET_STATE:-/var/tmp/palhm-fleet}"
MAILDIR="$FLEET_STATE/services/maildir"
SEEN="$OUT/mail-seen"
export FLEET_OUT="$OUT" FLEET_STATE
# Colour and warnings off: the logs are parsed.
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_DEPRECATION_WARNINGS=0

PASSED=0
FAILED=0
FAILS=()
T0=$SECONDS

log() { printf '[fleet-test %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
pass() {
	PASSED=$((PASSED + 1))
	printf 'PASS %s\n' "$*"
}
fail() {
	FAILED=$((FAILED + 1))
	FAILS+=("$*")
	printf 'FAIL %s\n' "$*"
}

[[ $EUID -eq 0 ]] || {
	echo "tests/fleet/run.sh must run as root" >&2
	exit 2
}

# One fleet at a time on this machine (bench and test share the names).
exec 9>/run/lock/palhm-fleet.lock
flock -w 1200 9 || {
	echo "another fleet run holds /run/lock/palhm-fleet.lock" >&2
	exit 2
}

# ansible from PATH (tests/run.sh's venv), else the fleet venv.
if ! command -v ansible-playbook >/dev/null 2>&1; then
	FLEET_PY="$(bash -c "source '$FLEET'; fleet_python")"
	PATH="$(dirname "$FLEET_PY"):$PATH"
	export PATH
fi
command -v ansible-playbook >/dev/null || {
	echo "no ansible-playbook" >&2
	exit 2
}
# The SMTP sink needs aiosmtpd: prefer the python that runs ansible.
if [[ -z "${FLEET_PYTHON:-}" ]]; then
	p="$(dirname "$(command -v ansible-playbook)")/python"
	[[ -x "$p" ]] && "$p" -c 'import aiosmtpd' 2>/dev/null && export FLEET_PYTHON="$p"
fi

cleanup() {
	local rc=$?
	if [[ "${FLEET_KEEP:-0}" == 1 ]]; then
		log "FLEET_KEEP=1: fleet left up (tests/fleet/fleet.sh down to remove)"
	else
		"$FLEET" down >"$LOGS/down.log" 2>&1 || log "teardown reported errors (see $LOGS/down.log)"
	fi
	exit "$rc"
}

rm -rf "$LOGS" "$SEEN"
mkdir -p "$LOGS"
"$FLEET" down >"$LOGS/down-stale.log" 2>&1 || true
trap cleanup EXIT
trap 'exit 130' INT TERM

ctl() { "$FLEET" ctl "$@"; }

# run_play NAME ARGS...: ansible-playbook with the log in $LOGS/NAME.log.
# Sets PLAY_RC.
STEP=0
run_play() {
	local name="$1"
	shift
	STEP=$((STEP + 1))
	LAST_LOG="$LOGS/$(printf '%02d' "$STEP")-$name.log"
	local t=$SECONDS
	PLAY_RC=0
	ctl ansible-playbook "$@" >"$LAST_LOG" 2>&1 || PLAY_RC=$?
	PLAY_S=$((SECONDS - t))
	log "$name: rc=$PLAY_RC in $PLAY_S s ($LAST_LOG)"
}
run_adhoc() {
	local name="$1"
	shift
	STEP=$((STEP + 1))
	LAST_LOG="$LOGS/$(printf '%02d' "$STEP")-$name.log"
	PLAY_RC=0
	ctl ansible fleet "$@" >"$LAST_LOG" 2>&1 || PLAY_RC=$?
	log "$name: rc=$PLAY_RC ($LAST_LOG)"
}
# recap HOST FIELD: the number in the last PLAY RECAP of $LAST_LOG.
recap() {
	awk -v h="$1" -v f="$2" '$1 == h && $2 == ":" {
		for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) v = kv[2] } }
		END { print (v == "" ? -1 : v) }' "$LAST_LOG"
}
show_log_tail() { tail -n "${1:-25}" "$LAST_LOG" | sed 's/^/    | /'; }
summary() {
	TOTAL_S=$((SECONDS - T0))
	echo
	echo "fleet test: $N hosts; fleet up ${FLEET_UP_S:-?} s, rollout ${ROLLOUT_S:-?} s, second run ${IDEMPOTENT_S:-?} s, total ${TOTAL_S} s (logs: $LOGS)"
	local f
	for f in "${FAILS[@]}"; do echo "  failed: $f"; done
	echo "$PASSED passed, $FAILED failed"
}
HOSTS=()
for i in $(seq 1 "$N"); do HOSTS+=("fleet-h$i"); done

# ---------------------------------------------------------------------------
log "bringing up $N hosts"
t=$SECONDS
if "$FLEET" up "$N" >"$LOGS/up.log" 2>&1; then
	pass "fleet of $N hosts up with sshd in $((SECONDS - t)) s"
else
	fail "fleet up"
	tail -20 "$LOGS/up.log"
	exit 1
fi
FLEET_UP_S=$((SECONDS - t))

run_adhoc systemd -m ansible.builtin.command -a "systemctl is-system-running --wait"
n_ok=$(grep -c 'rc=0' "$LAST_LOG" || true)
if [[ "$PLAY_RC" == 0 && "$n_ok" == "$N" ]]; then
	pass "every host runs systemd as PID 1 with its own hostname"
else
	fail "systemd state on hosts"
	show_log_tail
fi

# --- 1. rollout -------------------------------------------------------------
run_play rollout palhm.palhm.site
ROLLOUT_S=$PLAY_S
ok=1
for h in "${HOSTS[@]}"; do
	[[ "$(recap "$h" failed)" == 0 && "$(recap "$h" unreachable)" == 0 && "$(recap "$h" ok)" -gt 0 ]] || ok=0
done
if [[ "$PLAY_RC" == 0 && "$ok" == 1 ]]; then
	pass "ansible-playbook palhm.palhm.site over SSH succeeds on all $N hosts"
else
	fail "rollout (palhm.palhm.site)"
	grep -E '^(fatal|failed)' "$LAST_LOG" | head -10 | sed 's/^/    | /' || true
	summary
	exit 1
fi

# --- 2. idempotency -----------------------------------------------------------
run_play idempotency palhm.palhm.site
IDEMPOTENT_S=$PLAY_S
bad=()
for h in "${HOSTS[@]}"; do
	[[ "$(recap "$h" changed)" == 0 && "$(recap "$h" failed)" == 0 ]] || bad+=("$h")
done
if [[ "$PLAY_RC" == 0 && ${#bad[@]} == 0 ]]; then
	pass "second run reports changed=0 on every host"
else
	fail "second run not idempotent on: ${bad[*]:-?}"
	grep -E '^(changed|fatal)' "$LAST_LOG" | head -20 | sed 's/^/    | /' || true
fi

# --- 3. check mode after changing a variable --------------------------------
run_adhoc cron-before -m ansible.builtin.command -a "sha256sum /etc/cron.d/palhm /etc/palhm/palhm.conf"
before="$(grep -E '^[0-9a-f]{64} ' "$LAST_LOG" | sort)"
run_play checkmode palhm.palhm.site --check --diff -e palhm_cron_mailto=ops@fleet.test
bad=()
for h in "${HOSTS[@]}"; do
	[[ "$(recap "$h" changed)" -ge 1 && "$(recap "$h" failed)" == 0 ]] || bad+=("$h")
done
grep -q '^+MAILTO=ops@fleet.test' "$LAST_LOG" || bad+=("no-diff")
run_adhoc cron-after -m ansible.builtin.command -a "sha256sum /etc/cron.d/palhm /etc/palhm/palhm.conf"
after="$(grep -E '^[0-9a-f]{64} ' "$LAST_LOG" | sort)"
if [[ "$PLAY_RC" == 0 && ${#bad[@]} == 0 && -n "$before" && "$before" == "$after" ]]; then
	pass "check mode after changing palhm_cron_mailto reports the change (with diff) and changes nothing"
else
	fail "check mode (hosts not reporting change or files changed: ${bad[*]:-files differ})"
fi

# --- 4. a broken variable fails its host alone -------------------------------
BROKEN="${HOSTS[1]:-${HOSTS[0]}}"
mkdir -p "$OUT/inventory/host_vars"
cat >"$OUT/inventory/host_vars/$BROKEN.yml" <<'EOF'
---
palhm_config:
  tasks:
    - id: backup
      type: backup
      backend: localfs
      backend-param: {root: /var/backups/palhm}
      objects:
        - path: broken
          pipeline:
            - {type: exec, exec-id: no-such-exec}
EOF
run_adhoc conf-before -l "$BROKEN" -m ansible.builtin.command -a "sha256sum /etc/palhm/palhm.conf"
conf_before="$(grep -Eo '^[0-9a-f]{64}' "$LAST_LOG" || true)"
run_play broken-var palhm.palhm.site
broken_rc=$PLAY_RC
bad=()
for h in "${HOSTS[@]}"; do
	if [[ "$h" == "$BROKEN" ]]; then
		[[ "$(recap "$h" failed)" == 1 ]] || bad+=("$h:not-failed")
	else
		[[ "$(recap "$h" failed)" == 0 && "$(recap "$h" ok)" -gt 0 ]] || bad+=("$h:failed")
	fi
done
grep -q 'no-such-exec' "$LAST_LOG" || bad+=("no-path-precise-message")
rm -f "$OUT/inventory/host_vars/$BROKEN.yml"
run_adhoc conf-after -l "$BROKEN" -m ansible.builtin.command -a "sha256sum /etc/palhm/palhm.conf"
conf_after="$(grep -Eo '^[0-9a-f]{64}' "$LAST_LOG" || true)"
[[ -n "$conf_before" && "$conf_before" == "$conf_after" ]] || bad+=("config-replaced")
if [[ "$broken_rc" != 0 && ${#bad[@]} == 0 ]]; then
	pass "a host with a broken palhm_config fails alone ('palhm config' names the bad key), keeps its config; the others finish"
else
	fail "broken variable isolation: ${bad[*]:-play rc $broken_rc}"
	grep -E '^(fatal|failed)' "$LAST_LOG" | head -5 | sed 's/^/    | /' || true
fi

# --- 4b. a core.json that breaks palhm.conf is rolled back ------------------
cat >"$OUT/inventory/host_vars/$BROKEN.yml" <<'EOF'
---
# core.json alone is valid, but palhm.conf uses Execs it no longer has.
palhm_core_execs:
  - {id: os-release, argv: [/bin/cat, /etc/os-release]}
EOF
run_adhoc core-before -l "$BROKEN" -m ansible.builtin.shell -a "sha256sum /etc/palhm/palhm.conf /etc/palhm/conf.d/*"
core_before="$(grep -E '^[0-9a-f]{64} ' "$LAST_LOG" || true)"
run_play broken-core palhm.palhm.site -l "$BROKEN"
broken_rc=$PLAY_RC
bad=()
[[ "$(recap "$BROKEN" failed)" == 1 ]] || bad+=("not-failed")
grep -q 'Put the previous core.json back' "$LAST_LOG" || bad+=("no-restore")
rm -f "$OUT/inventory/host_vars/$BROKEN.yml"
run_adhoc core-after -l "$BROKEN" -m ansible.builtin.shell -a "sha256sum /etc/palhm/palhm.conf /etc/palhm/conf.d/*"
core_after="$(grep -E '^[0-9a-f]{64} ' "$LAST_LOG" || true)"
[[ -n "$core_before" && "$core_before" == "$core_after" ]] || bad+=("files-changed-or-backup-left")
if [[ "$broken_rc" != 0 && ${#bad[@]} == 0 ]]; then
	pass "a core.json that breaks palhm.conf fails the host and the previous core.json is put back"
else
	fail "core.json rollback: ${bad[*]:-play rc $broken_rc}"
	grep -E '^(fatal|failed)' "$LAST_LOG" | head -5 | sed 's/^/    | /' || true
fi

# --- 5. each host's own cron runs the backup ---------------------------------
run_play cron-every-minute palhm.palhm.site -e "@$FLEET_DIR/vars/every_minute.yml"
log "waiting for cron (up to 150 s)"
deadline=$((SECONDS + 150))
cron_ok=0
while ((SECONDS < deadline)); do
	sleep 10
	run_adhoc cron-copy -m ansible.builtin.script -a "executable=/usr/bin/python3 $FLEET_DIR/check_copy.py --task backup --cron"
	if [[ "$PLAY_RC" == 0 ]]; then
		cron_ok=1
		break
	fi
done
if [[ "$cron_ok" == 1 ]]; then
	pass "each host's cron ran 'palhm run backup': a complete copy whose manifest names the host"
else
	fail "scheduled backup from cron"
	grep -E 'FAIL|msg' "$LAST_LOG" | head -6 | sed 's/^/    | /' || true
fi

# --- 6. systemd timers (the every-minute cron entry goes), then back to daily cron ------------------
# Check mode of each switch first: it must pass and change nothing.
run_play timers-check-to palhm.palhm.site --check -e palhm_scheduler=systemd
rc_check_to=$PLAY_RC
run_adhoc timers-check-to-after -m ansible.builtin.shell -a "test -f /etc/cron.d/palhm && ! test -e /etc/systemd/system/palhm-task-backup.timer"
n_check_to=$(grep -c 'rc=0' "$LAST_LOG" || true)
if [[ "$rc_check_to" == 0 && "$n_check_to" == "$N" ]]; then
	pass "check mode of the switch cron -> systemd passes and changes nothing"
else
	fail "check mode of the switch cron -> systemd (rc $rc_check_to, unchanged on $n_check_to/$N)"
fi
run_play timers palhm.palhm.site -e palhm_scheduler=systemd
run_adhoc timers-check -m ansible.builtin.shell -a \
	"systemctl is-enabled palhm-task-backup.timer && systemctl is-active palhm-task-backup.timer && ! test -e /etc/cron.d/palhm && systemctl cat palhm-task-backup.timer | grep -E '^(Persistent=true|RandomizedDelaySec=|OnCalendar=)'"
n_ok=$(grep -c 'rc=0' "$LAST_LOG" || true)
rc_check_back=0
for sched in cron none; do
	run_play "timers-check-$sched" palhm.palhm.site --check -e palhm_scheduler=$sched
	((PLAY_RC == 0)) || rc_check_back=$PLAY_RC
done
run_adhoc timers-check-back-after -m ansible.builtin.shell -a "systemctl is-active palhm-task-backup.timer && ! test -e /etc/cron.d/palhm"
n_check_back=$(grep -c 'rc=0' "$LAST_LOG" || true)
if [[ "$rc_check_back" == 0 && "$n_check_back" == "$N" ]]; then
	pass "check mode of the switches systemd -> cron and systemd -> none passes and changes nothing"
else
	fail "check mode of the switches from systemd (rc $rc_check_back, unchanged on $n_check_back/$N)"
fi
run_play timers-back palhm.palhm.site
rc_back=$PLAY_RC
run_adhoc timers-gone -m ansible.builtin.shell -a "! test -e /etc/systemd/system/palhm-task-backup.timer && test -f /etc/cron.d/palhm"
n_gone=$(grep -c 'rc=0' "$LAST_LOG" || true)
if [[ "$n_ok" == "$N" && "$rc_back" == 0 && "$n_gone" == "$N" ]]; then
	pass "palhm_scheduler=systemd installs persistent randomized timers; switching back to cron removes them"
else
	fail "systemd timers (enabled on $n_ok/$N, removed on $n_gone/$N)"
fi

# --- 7. ad hoc module and backup_now playbook --------------------------------
run_adhoc adhoc-backup -m palhm.palhm.palhm_backup -a task=backup
adhoc_rc=$PLAY_RC
run_adhoc adhoc-copy -m ansible.builtin.script -a "executable=/usr/bin/python3 $FLEET_DIR/check_copy.py --task backup --min-count 2"
if [[ "$adhoc_rc" == 0 && "$PLAY_RC" == 0 ]]; then
	pass "ansible fleet -m palhm.palhm.palhm_backup -a task=backup works on all hosts"
else
	fail "ad hoc palhm.palhm.palhm_backup (rc $adhoc_rc, copies rc $PLAY_RC)"
	grep -E 'FAILED|FAIL|msg' "$LOGS"/*-adhoc-backup.log | head -6 | sed 's/^/    | /' || true
fi
run_play backup-now palhm.palhm.backup_now -e palhm_task=backup
if [[ "$PLAY_RC" == 0 ]]; then
	pass "ansible-playbook palhm.palhm.backup_now runs the task on the fleet"
else
	fail "palhm.palhm.backup_now"
	show_log_tail 10
fi

# --- 7b. S3 server in the services namespace ---------------------------------
if [[ -f "$FLEET_STATE/services/s3.pid" ]]; then
	run_play s3-config palhm.palhm.site -e fleet_s3_enabled=true
	s3_cfg_rc=$PLAY_RC
	run_adhoc s3-backup -m palhm.palhm.palhm_backup -a task=backup-s3
	s3_rc=$PLAY_RC
	run_adhoc s3-copy -m ansible.builtin.script -a "executable=/usr/bin/python3 $FLEET_DIR/check_copy.py --task backup-s3 --root '' --verify"
	if [[ "$s3_cfg_rc" == 0 && "$s3_rc" == 0 && "$PLAY_RC" == 0 ]]; then
		pass "every host backs up to the S3 server in the services namespace (aws-s3 backend, complete copy verifies)"
	else
		fail "aws-s3 backup to the services namespace (config rc $s3_cfg_rc, backup rc $s3_rc, check rc $PLAY_RC)"
		grep -E 'FAIL|"msg"' "$LOGS"/*-s3-*.log | head -6 | sed 's/^/    | /' || true
	fi
else
	fail "no S3 server in the services namespace (moto_server missing beside the fleet python)"
fi

# --- 8. boot report after a clean reboot --------------------------------------
# Reports sent so far (rollout started the unit) are old.
python3 "$FLEET_DIR/check_mail.py" "$MAILDIR" "$SEEN" --timeout 0 --settle 0 >/dev/null 2>&1 || true
run_play reboot "$FLEET_DIR/reboot.yml"
reboot_rc=$PLAY_RC
expect=()
for h in "${HOSTS[@]}"; do expect+=("$h=clean"); done
STEP=$((STEP + 1))
LAST_LOG="$LOGS/$(printf '%02d' "$STEP")-mail-clean.log"
if [[ "$reboot_rc" == 0 ]] && python3 "$FLEET_DIR/check_mail.py" "$MAILDIR" "$SEEN" "${expect[@]}" --timeout 60 >"$LAST_LOG" 2>&1; then
	pass "after ansible.builtin.reboot each host sent one boot report with its hostname and previous shutdown 'clean'"
else
	fail "boot report after clean reboot (reboot rc $reboot_rc)"
	show_log_tail 12
fi

# --- 9. boot report after a power cut -----------------------------------------
VICTIM="${HOSTS[-1]}"
STEP=$((STEP + 1))
LAST_LOG="$LOGS/$(printf '%02d' "$STEP")-mail-unclean.log"
if "$FLEET" kill "$VICTIM" >"$LAST_LOG" 2>&1 && "$FLEET" start "$VICTIM" >>"$LAST_LOG" 2>&1 &&
	python3 "$FLEET_DIR/check_mail.py" "$MAILDIR" "$SEEN" "$VICTIM=unclean" --timeout 60 >>"$LAST_LOG" 2>&1; then
	pass "after $VICTIM was killed (SIGKILL) and started again its report says the previous shutdown was unclean"
else
	fail "boot report after a kill"
	show_log_tail 12
fi

# --- 10. state: absent ---------------------------------------------------------
run_play absent palhm.palhm.site -l "$VICTIM" -e palhm_state=absent
absent_rc=$PLAY_RC
run_adhoc absent-check -l "$VICTIM" -m ansible.builtin.shell -a \
	"! test -e /etc/palhm && ! test -e /usr/local/lib/palhm && ! test -e /usr/local/bin/palhm && ! test -e /etc/cron.d/palhm && ! test -e /etc/systemd/system/palhm-boot-report.service && ! systemctl is-enabled palhm-boot-report.service"
if [[ "$absent_rc" == 0 && "$PLAY_RC" == 0 ]]; then
	pass "palhm_state=absent removes the engine, command, config, schedule and unit"
else
	fail "palhm_state=absent"
	show_log_tail 10
fi
run_play fresh-check palhm.palhm.site -l "$VICTIM" --check --diff
fresh_rc=$PLAY_RC
fresh_changed="$(recap "$VICTIM" changed)"
fresh_lines=$(wc -l <"$LAST_LOG")
if ((fresh_lines < 1000)) && ! grep -q '^+# -\*- coding: utf-8' "$LAST_LOG"; then
	pass "check mode --diff on a fresh host shows no diff body for the engine files ($fresh_lines lines)"
else
	fail "check mode --diff on a fresh host prints $fresh_lines lines"
fi
fresh_sched_rc=0
for sched in systemd none; do
	run_play "fresh-check-$sched" palhm.palhm.site -l "$VICTIM" --check -e palhm_scheduler=$sched
	((PLAY_RC == 0)) || fresh_sched_rc=$PLAY_RC
done
if [[ "$fresh_sched_rc" == 0 ]]; then
	pass "check mode on a fresh host passes with palhm_scheduler systemd and none"
else
	fail "check mode on a fresh host with another scheduler (rc $fresh_sched_rc)"
fi
# A typo in palhm_config fails --check as the real run would, naming the key.
cat >"$OUT/typo-vars.json" <<'EOF'
{"palhm_config": {"tasks": [{"id": "backup", "type": "backup", "backend": "null",
  "objects": [{"path": "etc.tar", "pipeline": [{"type": "exec", "exec-id": "tarr"}]}]}]}}
EOF
run_play fresh-check-typo palhm.palhm.site -l "$VICTIM" --check -e "@$OUT/typo-vars.json"
if [[ "$PLAY_RC" != 0 ]] && grep -q 'exec-id: no exec named' "$LAST_LOG"; then
	pass "check mode rejects a typo'd exec-id in palhm_config, naming the key"
else
	fail "check mode with a typo'd exec-id (rc $PLAY_RC)"
fi
run_adhoc fresh-check-after -l "$VICTIM" -m ansible.builtin.shell -a "! test -e /etc/palhm && ! test -e /usr/local/bin/palhm"
if [[ "$fresh_rc" == 0 && "$fresh_changed" -ge 1 && "$PLAY_RC" == 0 ]]; then
	pass "check mode on a host without PALHM reports the changes and installs nothing"
else
	fail "check mode on a fresh host (rc $fresh_rc, changed $fresh_changed, host untouched rc $PLAY_RC)"
fi

summary
[[ "$FAILED" == 0 ]]
