#!/usr/bin/env bash
# Time a full rollout of the palhm role (palhm.palhm.site over SSH) to fleets
# of test hosts, and the idempotent second run, with the per-host figure.
#
#   bench/fleet_rollout.sh            fleets of 3 and 6 hosts
#   bench/fleet_rollout.sh 3 6 12     other sizes
#
# Uses tests/fleet/fleet.sh (systemd-nspawn hosts in network namespaces); the
# first run builds the cached base image (a few minutes). Needs root.
# Results also go to bench/results/fleet_rollout.txt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FLEET="$ROOT/tests/fleet/fleet.sh"
SIZES=("$@")
((${#SIZES[@]})) || SIZES=(3 6)
export FLEET_OUT="${FLEET_OUT:-$ROOT/tests/output/fleet-bench}"
export ANSIBLE_NOCOLOR=1 ANSIBLE_DEPRECATION_WARNINGS=0
RESULTS="$ROOT/bench/results"
mkdir -p "$RESULTS" "$FLEET_OUT"

[[ $EUID -eq 0 ]] || {
	echo "needs root" >&2
	exit 2
}
exec 9>/run/lock/palhm-fleet.lock
flock -w 1200 9 || {
	echo "another fleet run holds /run/lock/palhm-fleet.lock" >&2
	exit 2
}
if ! command -v ansible-playbook >/dev/null 2>&1; then
	py="$(bash -c "source '$FLEET'; fleet_python")"
	PATH="$(dirname "$py"):$PATH"
	export PATH
fi

cleanup() { "$FLEET" down >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
"$FLEET" down >/dev/null 2>&1 || true

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
per() { awk -v t="$1" -v n="$2" 'BEGIN { printf "%.2f", t / n }'; }

# play LOG: run site.yml, check the recap; prints elapsed seconds.
play() {
	local log="$1" t0 t1
	t0="$(now)"
	if ! "$FLEET" ctl ansible-playbook palhm.palhm.site >"$log" 2>&1; then
		echo "rollout failed, see $log" >&2
		tail -15 "$log" >&2
		exit 1
	fi
	t1="$(now)"
	secs "$t0" "$t1"
}

"$FLEET" base >&2
printf '%-6s %10s %12s %14s %12s %14s %10s\n' hosts "up (s)" "rollout (s)" "per host (s)" "2nd run (s)" "per host (s)" "changed" |
	tee "$RESULTS/fleet_rollout.txt"
for n in "${SIZES[@]}"; do
	t0="$(now)"
	"$FLEET" up "$n" >"$FLEET_OUT/up-$n.log" 2>&1 || {
		tail "$FLEET_OUT/up-$n.log" >&2
		exit 1
	}
	up="$(secs "$t0" "$(now)")"
	first="$(play "$FLEET_OUT/rollout-$n.log")"
	second="$(play "$FLEET_OUT/second-$n.log")"
	changed="$(awk '/ : ok=/ { for (i = 3; i <= NF; i++) if ($i ~ /^changed=/) { split($i, kv, "="); s += kv[2] } } END { print s + 0 }' "$FLEET_OUT/second-$n.log")"
	printf '%-6s %10s %12s %14s %12s %14s %10s\n' "$n" "$up" "$first" "$(per "$first" "$n")" \
		"$second" "$(per "$second" "$n")" "$changed" | tee -a "$RESULTS/fleet_rollout.txt"
	"$FLEET" down >/dev/null 2>&1
done
echo "(per host = wall time / hosts; 'changed' = sum of changed= on the second run, expect 0;" \
	"$(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$RESULTS/fleet_rollout.txt"
