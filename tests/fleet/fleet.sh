#!/usr/bin/env bash
# Fleet of throw-away test hosts for the palhm role: systemd-nspawn containers
# booted from one cached debootstrapped Debian base, each in a network
# namespace of its own, behind a bridge that lives in a controller namespace.
#
#   fleet.sh base            build (or reuse) the cached base image
#   fleet.sh up N            bring up N hosts + the services namespace
#   fleet.sh down            tear everything down (safe to run twice)
#   fleet.sh ctl CMD...      run CMD in the controller namespace (ansible, ssh)
#   fleet.sh kill HOST       power-cut HOST (SIGKILL nspawn and its processes)
#   fleet.sh start HOST      boot HOST again after a kill
#   fleet.sh status          list hosts and PIDs
#
# Nothing here touches an address or interface outside the namespaces it
# creates: the bridge, the controller address and the services address all
# live in the namespace "${FLEET_PREFIX}-ctl" / "-svc" / "-hN".
set -euo pipefail

FLEET_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${FLEET_DIR}/../.." && pwd)"
FLEET_CACHE="${FLEET_CACHE:-/var/cache/palhm-test}"
FLEET_STATE="${FLEET_STATE:-/var/tmp/palhm-fleet}"
FLEET_OUT="${FLEET_OUT:-${REPO_ROOT}/tests/output/fleet}"
FLEET_PREFIX="${FLEET_PREFIX:-palhmt}"
FLEET_NET="${FLEET_NET:-10.231.0}"
FLEET_SUITE="${FLEET_SUITE:-bookworm}"
FLEET_CTL_NS="${FLEET_PREFIX}-ctl"
FLEET_SVC_NS="${FLEET_PREFIX}-svc"
FLEET_BRIDGE="fbr0"
FLEET_CTL_IP="${FLEET_NET}.1"
FLEET_SVC_IP="${FLEET_NET}.2"
FLEET_SMTP_PORT="${FLEET_SMTP_PORT:-25}"
FLEET_S3_PORT="${FLEET_S3_PORT:-9000}"
CG_NAME="palhm-fleet"

# Everything the role and the tests need on a host must be in the base: the
# hosts have no route to a package mirror. Changing this list (or BASE_REV)
# rebuilds the cached base.
BASE_PKGS=(
	systemd systemd-sysv dbus libpam-systemd openssh-server cron
	python3 python3-apt python3-boto3 python3-dnspython
	zstd xz-utils gzip tar iproute2 procps s-nail bind9-dnsutils
)
BASE_REV=2
BASE_TAR="${FLEET_CACHE}/fleet-base.tar.zst"
BASE_DIR="${FLEET_CACHE}/fleet-base"
BASE_STAMP="${FLEET_CACHE}/fleet-base.stamp"

log() { printf '[fleet %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

host_name() { printf 'fleet-h%d' "$1"; }
host_ip() { printf '%s.%d' "${FLEET_NET}" "$((10 + $1))"; }
host_ns() { printf '%s-h%d' "${FLEET_PREFIX}" "$1"; }
host_idx() {
	local n="${1#fleet-h}"
	[[ "$n" =~ ^[0-9]+$ ]] || die "not a fleet host: $1"
	printf '%s' "$n"
}

base_stamp_value() {
	printf '%s\n' "${FLEET_SUITE}" "${BASE_REV}" "${BASE_PKGS[@]}" | sha256sum | cut -d' ' -f1
}

apt_mirror() {
	local m
	m="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
	if [[ -z "$m" ]]; then
		m="$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
	fi
	printf '%s' "${m:-http://deb.debian.org/debian}"
}

ensure_tools() {
	local missing=()
	command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
	command -v debootstrap >/dev/null || missing+=(debootstrap)
	command -v ssh >/dev/null || missing+=(openssh-client)
	command -v ssh-keygen >/dev/null || missing+=(openssh-client)
	command -v ip >/dev/null || missing+=(iproute2)
	command -v zstd >/dev/null || missing+=(zstd)
	if ((${#missing[@]})); then
		log "installing ${missing[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
}

# Prepare a freshly debootstrapped tree so that many hosts can share it.
base_prepare() {
	local d="$1"
	# Host keys and machine-id are per host (written into each overlay).
	rm -f "$d"/etc/ssh/ssh_host_*
	: >"$d/etc/machine-id"
	mkdir -p "$d/var/lib/dbus"
	ln -sf /etc/machine-id "$d/var/lib/dbus/machine-id"
	# No audit/loginuid in a container: pam_loginuid must not be fatal.
	local f
	for f in "$d/etc/pam.d/sshd" "$d/etc/pam.d/cron"; do
		[[ -f "$f" ]] && sed -i -E 's/^(session\s+)required(\s+pam_loginuid\.so)/\1optional\2/' "$f"
	done
	install -d -m 0700 "$d/root/.ssh"
	# Units that make no sense (or cause noise) on a test host.
	local u
	for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
		e2scrub_reap.service fstrim.timer systemd-networkd-wait-online.service; do
		ln -sf /dev/null "$d/etc/systemd/system/$u"
	done
	printf 'PermitRootLogin prohibit-password\nUseDNS no\n' >"$d/etc/ssh/sshd_config.d/fleet.conf"
	printf 'LANG=C.UTF-8\n' >"$d/etc/default/locale"
	rm -rf "$d"/var/cache/apt/archives/*.deb "$d"/var/lib/apt/lists/*
	rm -f "$d/etc/resolv.conf"
	printf 'nameserver %s\n' "${FLEET_SVC_IP}" >"$d/etc/resolv.conf"
}

cmd_base() {
	ensure_tools
	local want have=""
	want="$(base_stamp_value)"
	[[ -f "$BASE_STAMP" ]] && have="$(cat "$BASE_STAMP")"
	if [[ "$want" == "$have" && -f "$BASE_TAR" ]]; then
		if [[ -f "$BASE_DIR/.stamp" && "$(cat "$BASE_DIR/.stamp")" == "$want" ]]; then
			log "base up to date: $BASE_DIR"
			return 0
		fi
		log "extracting cached base $BASE_TAR"
		rm -rf "$BASE_DIR.new"
		mkdir -p "$BASE_DIR.new"
		tar -C "$BASE_DIR.new" --numeric-owner -I zstd -xpf "$BASE_TAR"
	else
		local t0=$SECONDS pkgs
		pkgs="$(IFS=,; echo "${BASE_PKGS[*]}")"
		log "building base ($FLEET_SUITE minbase + $pkgs); takes a few minutes"
		rm -rf "$BASE_DIR.new"
		mkdir -p "$FLEET_CACHE" "$BASE_DIR.new"
		if ! debootstrap --variant=minbase --include="$pkgs" "$FLEET_SUITE" \
			"$BASE_DIR.new" "$(apt_mirror)" >"$FLEET_CACHE/debootstrap.log" 2>&1; then
			tail -20 "$FLEET_CACHE/debootstrap.log" >&2
			die "debootstrap failed (log: $FLEET_CACHE/debootstrap.log)"
		fi
		base_prepare "$BASE_DIR.new"
		tar -C "$BASE_DIR.new" --numeric-owner -I 'zstd -T0 -3' -cpf "$BASE_TAR.tmp" .
		mv -f "$BASE_TAR.tmp" "$BASE_TAR"
		printf '%s\n' "$want" >"$BASE_STAMP"
		log "base built in $((SECONDS - t0)) s ($(du -sh "$BASE_TAR" | cut -f1) packed)"
	fi
	printf '%s\n' "$want" >"$BASE_DIR.new/.stamp"
	if mountpoint_users_base; then
		die "base is in use by a running fleet; run '$0 down' first"
	fi
	rm -rf "$BASE_DIR"
	mv "$BASE_DIR.new" "$BASE_DIR"
}

mountpoint_users_base() {
	grep -q "lowerdir=${BASE_DIR}[,:]" /proc/mounts
}

ssh_key() {
	local k="$FLEET_CACHE/fleet_ed25519"
	if [[ ! -f "$k" ]]; then
		ssh-keygen -q -t ed25519 -N '' -C palhm-fleet -f "$k"
	fi
	printf '%s' "$k"
}

ns_exists() { [[ -e "/run/netns/$1" ]]; }

net_up() {
	ns_exists "$FLEET_CTL_NS" && return 0
	ip netns add "$FLEET_CTL_NS"
	ip -n "$FLEET_CTL_NS" link set lo up
	ip -n "$FLEET_CTL_NS" link add "$FLEET_BRIDGE" type bridge
	ip -n "$FLEET_CTL_NS" addr add "${FLEET_CTL_IP}/24" dev "$FLEET_BRIDGE"
	ip -n "$FLEET_CTL_NS" link set "$FLEET_BRIDGE" up
}

# Attach namespace $1 to the bridge as $3 (address), controller side named $2.
ns_attach() {
	local ns="$1" peer="$2" addr="$3"
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip -n "$FLEET_CTL_NS" link add "$peer" type veth peer name eth0 netns "$ns"
	ip -n "$FLEET_CTL_NS" link set "$peer" master "$FLEET_BRIDGE" up
	ip -n "$ns" addr add "${addr}/24" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add default via "$FLEET_CTL_IP" dev eth0 2>/dev/null || true
}

fleet_python() {
	# A python with aiosmtpd (and moto for S3): the test venv, else our own.
	local p
	for p in "${FLEET_PYTHON:-}" "$FLEET_CACHE/fleet-venv/bin/python"; do
		if [[ -n "$p" && -x "$p" ]] && "$p" -c 'import aiosmtpd' 2>/dev/null; then
			printf '%s' "$p"
			return 0
		fi
	done
	log "creating $FLEET_CACHE/fleet-venv (aiosmtpd, moto[server], ansible-core)"
	python3 -m venv "$FLEET_CACHE/fleet-venv"
	"$FLEET_CACHE/fleet-venv/bin/pip" install -q aiosmtpd 'moto[server]' 'ansible-core>=2.17,<2.20' >&2
	printf '%s' "$FLEET_CACHE/fleet-venv/bin/python"
}

services_up() {
	ns_exists "$FLEET_SVC_NS" && return 0
	ns_attach "$FLEET_SVC_NS" fsvc "$FLEET_SVC_IP"
	local py sd="$FLEET_STATE/services"
	py="$(fleet_python)"
	mkdir -p "$sd"
	rm -rf "$sd/maildir"
	setsid ip netns exec "$FLEET_SVC_NS" "$py" "$FLEET_DIR/smtp_sink.py" \
		--host "$FLEET_SVC_IP" --port "$FLEET_SMTP_PORT" --maildir "$sd/maildir" \
		>"$sd/smtp.log" 2>&1 </dev/null &
	echo $! >"$sd/smtp.pid"
	local moto
	moto="$(dirname "$py")/moto_server"
	if [[ -x "$moto" ]]; then
		setsid ip netns exec "$FLEET_SVC_NS" "$moto" -H "$FLEET_SVC_IP" -p "$FLEET_S3_PORT" \
			>"$sd/s3.log" 2>&1 </dev/null &
		echo $! >"$sd/s3.pid"
	else
		log "no moto_server beside $py: S3 service not started"
	fi
	local i
	for i in $(seq 1 100); do
		[[ -d "$sd/maildir/new" ]] && break
		sleep 0.1
	done
	[[ -d "$sd/maildir/new" ]] || die "SMTP sink did not start (log: $sd/smtp.log)"
	if [[ -f "$sd/s3.pid" ]]; then
		# The bucket the hosts' aws-s3 test task writes to.
		local ok=0
		for i in $(seq 1 100); do
			if ip netns exec "$FLEET_SVC_NS" "$py" -c "
import boto3
boto3.client('s3', endpoint_url='http://${FLEET_SVC_IP}:${FLEET_S3_PORT}', region_name='us-east-1',
             aws_access_key_id='testing', aws_secret_access_key='testing').create_bucket(Bucket='palhm-fleet')
" >>"$sd/s3.log" 2>&1; then
				ok=1
				break
			fi
			sleep 0.2
		done
		((ok)) || die "S3 server did not start (log: $sd/s3.log)"
	fi
}

cg_dirs() {
	local name="$1"
	printf '%s\n' "/sys/fs/cgroup/unified/$CG_NAME/$name" "/sys/fs/cgroup/systemd/$CG_NAME/$name"
}

host_launch() {
	local i="$1" name ns hd
	name="$(host_name "$i")"
	ns="$(host_ns "$i")"
	hd="$FLEET_STATE/$name"
	local d
	while read -r d; do
		[[ -d "$(dirname "$(dirname "$d")")" ]] && mkdir -p "$d"
	done < <(cg_dirs "$name")
	(
		# Own cgroup per host: without systemd as PID 1 here, nspawn
		# --keep-unit would otherwise put all hosts in one cgroup.
		while read -r d; do
			[[ -d "$d" ]] && echo "$BASHPID" >"$d/cgroup.procs"
		done < <(cg_dirs "$name")
		while :; do
			systemd-nspawn -q -D "$hd/root" -M "$name" --register=no --keep-unit \
				--console=read-only --resolv-conf=off --link-journal=no \
				--timezone=off --network-namespace-path="/run/netns/$ns" -b &
			echo $! >"$hd/nspawn.pid"
			rc=0
			wait $! || rc=$?
			echo "[fleet] nspawn exited $rc at $(date +%T)"
			# 133: the container asked for a reboot.
			[[ "$rc" == 133 ]] || exit "$rc"
		done
	) >>"$hd/console.log" 2>&1 </dev/null &
	echo $! >"$hd/launcher.pid"
}

host_up() {
	local i="$1" name ns ip hd key
	name="$(host_name "$i")"
	ns="$(host_ns "$i")"
	ip="$(host_ip "$i")"
	hd="$FLEET_STATE/$name"
	key="$(ssh_key)"
	mkdir -p "$hd/upper" "$hd/work" "$hd/root"
	local u="$hd/upper"
	mkdir -p "$u/etc/ssh" "$u/root/.ssh"
	printf '%s\n' "$name" >"$u/etc/hostname"
	od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$u/etc/machine-id"
	echo >>"$u/etc/machine-id"
	printf '127.0.0.1 localhost\n127.0.1.1 %s\n%s palhm-services\n' "$name" "$FLEET_SVC_IP" >"$u/etc/hosts"
	ssh-keygen -q -A -f "$u" >/dev/null
	install -m 0600 "$key.pub" "$u/root/.ssh/authorized_keys"
	chmod 0700 "$u/root/.ssh"
	mount -t overlay overlay \
		-o "lowerdir=$BASE_DIR,upperdir=$hd/upper,workdir=$hd/work" "$hd/root"
	ns_attach "$ns" "fh$i" "$ip"
	host_launch "$i"
}

wait_ssh() {
	local ip="$1" key deadline=$((SECONDS + ${2:-90}))
	key="$(ssh_key)"
	while ((SECONDS < deadline)); do
		if ip netns exec "$FLEET_CTL_NS" ssh -q -i "$key" -o BatchMode=yes \
			-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
			-o ConnectTimeout=2 "root@$ip" true 2>/dev/null; then
			return 0
		fi
		sleep 0.5
	done
	return 1
}

write_inventory() {
	local n="$1" key inv="$FLEET_OUT/inventory"
	key="$(ssh_key)"
	mkdir -p "$FLEET_STATE/collections/ansible_collections/palhm" "$FLEET_OUT/cp" "$inv"
	ln -sfn "$REPO_ROOT" "$FLEET_STATE/collections/ansible_collections/palhm/palhm"
	rm -rf "$inv/host_vars"
	ln -sfn "$FLEET_DIR/inventory/group_vars" "$inv/group_vars"
	{
		echo "[fleet]"
		local i
		for i in $(seq 1 "$n"); do
			echo "$(host_name "$i") ansible_host=$(host_ip "$i")"
		done
		echo
		echo "[palhm:children]"
		echo "fleet"
		echo
		echo "[fleet:vars]"
		echo "ansible_user=root"
		echo "fleet_smtp_host=${FLEET_SVC_IP}"
		echo "fleet_smtp_port=${FLEET_SMTP_PORT}"
		echo "fleet_s3_endpoint=http://${FLEET_SVC_IP}:${FLEET_S3_PORT}"
	} >"$inv/hosts.ini"
	cat >"$FLEET_OUT/ansible.cfg" <<EOF
[defaults]
inventory = $inv
collections_path = $FLEET_STATE/collections
private_key_file = $key
host_key_checking = False
forks = 20
interpreter_python = /usr/bin/python3
retry_files_enabled = False
timeout = 20

[ssh_connection]
pipelining = True
ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o LogLevel=ERROR
control_path_dir = $FLEET_OUT/cp
EOF
	printf '%s\n' "$n" >"$FLEET_STATE/size"
}

cmd_up() {
	local n="${1:-3}" t0=$SECONDS
	[[ "$n" =~ ^[0-9]+$ && "$n" -ge 1 && "$n" -le 50 ]] || die "bad host count: $n"
	[[ $EUID -eq 0 ]] || die "must run as root"
	if ns_exists "$FLEET_CTL_NS"; then
		die "a fleet is already up (run '$0 down' first)"
	fi
	cmd_base
	mkdir -p "$FLEET_STATE"
	net_up
	services_up
	local i
	for i in $(seq 1 "$n"); do
		host_up "$i"
	done
	for i in $(seq 1 "$n"); do
		wait_ssh "$(host_ip "$i")" 90 || die "$(host_name "$i") not reachable over SSH (see $FLEET_STATE/$(host_name "$i")/console.log)"
	done
	write_inventory "$n"
	log "fleet of $n up in $((SECONDS - t0)) s; inventory $FLEET_OUT/inventory"
}

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }
# kill_alive SIGNAL PID: signal a process this script started, if still there.
kill_alive() {
	if pid_alive "${2:-}"; then
		kill "-$1" "$2" 2>/dev/null || true
	fi
}

# Kill what is left in the host's cgroups (container processes), by PID.
cg_kill() {
	local name="$1" d
	while read -r d; do
		[[ -d "$d" ]] || continue
		if [[ -f "$d/cgroup.kill" ]]; then
			echo 1 >"$d/cgroup.kill" 2>/dev/null || true
		fi
		local p
		while read -r p; do
			if [[ -n "$p" ]]; then kill -KILL "$p" 2>/dev/null || true; fi
		done < <(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null)
	done < <(cg_dirs "$name")
}

cg_remove() {
	local name="$1" d
	while read -r d; do
		[[ -d "$d" ]] || continue
		# Deepest first: the container's systemd made sub-cgroups.
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
	done < <(cg_dirs "$name")
}

host_stop() {
	local name="$1" hd="$FLEET_STATE/$1" lp np
	lp="$(cat "$hd/launcher.pid" 2>/dev/null || true)"
	np="$(cat "$hd/nspawn.pid" 2>/dev/null || true)"
	if pid_alive "$np"; then
		# TERM = clean poweroff of the container.
		kill -TERM "$np" 2>/dev/null || true
		local k
		for k in $(seq 1 150); do
			pid_alive "$np" || break
			sleep 0.1
		done
	fi
	kill_alive KILL "$lp"
	kill_alive KILL "$np"
	cg_kill "$name"
}

cmd_kill() {
	local name="$1" hd="$FLEET_STATE/$1" lp np
	[[ -d "$hd" ]] || die "no such host: $name"
	lp="$(cat "$hd/launcher.pid" 2>/dev/null || true)"
	np="$(cat "$hd/nspawn.pid" 2>/dev/null || true)"
	# Launcher first so that it does not relaunch; then power-cut.
	kill_alive KILL "$lp"
	kill_alive KILL "$np"
	cg_kill "$name"
	local k
	for k in $(seq 1 50); do
		pid_alive "$np" || break
		sleep 0.1
	done
	log "$name killed"
}

cmd_start() {
	local name="$1" i
	i="$(host_idx "$name")"
	[[ -d "$FLEET_STATE/$name/root/etc" ]] || die "$name has no mounted root"
	pid_alive "$(cat "$FLEET_STATE/$name/nspawn.pid" 2>/dev/null || true)" && die "$name is running"
	cg_remove "$name"
	host_launch "$i"
	wait_ssh "$(host_ip "$i")" 90 || die "$name not reachable after start"
	log "$name started"
}

cmd_down() {
	local hd name i
	if [[ -d "$FLEET_STATE" ]]; then
		for hd in "$FLEET_STATE"/fleet-h*; do
			[[ -d "$hd" ]] || continue
			host_stop "$(basename "$hd")" &
		done
		wait
		for hd in "$FLEET_STATE"/fleet-h*; do
			[[ -d "$hd" ]] || continue
			name="$(basename "$hd")"
			if mountpoint -q "$hd/root"; then
				umount "$hd/root" 2>/dev/null || umount -l "$hd/root" || true
			fi
			cg_remove "$name"
			i="$(host_idx "$name")"
			ip -n "$FLEET_CTL_NS" link del "fh$i" 2>/dev/null || true
			if ns_exists "$(host_ns "$i")"; then ip netns del "$(host_ns "$i")" || true; fi
			rm -rf "$hd"
		done
		local f p
		for f in "$FLEET_STATE"/services/*.pid; do
			[[ -f "$f" ]] || continue
			p="$(cat "$f")"
			if pid_alive "$p"; then
				kill -TERM "$p" 2>/dev/null || true
			fi
		done
		for f in "$FLEET_STATE"/services/*.pid; do
			[[ -f "$f" ]] || continue
			p="$(cat "$f")"
			for i in $(seq 1 30); do pid_alive "$p" || break; sleep 0.1; done
			kill_alive KILL "$p"
			rm -f "$f"
		done
	fi
	if ns_exists "$FLEET_CTL_NS"; then
		ip -n "$FLEET_CTL_NS" link del fsvc 2>/dev/null || true
	fi
	if ns_exists "$FLEET_SVC_NS"; then ip netns del "$FLEET_SVC_NS" || true; fi
	if ns_exists "$FLEET_CTL_NS"; then
		ip -n "$FLEET_CTL_NS" link del "$FLEET_BRIDGE" 2>/dev/null || true
		ip netns del "$FLEET_CTL_NS" || true
	fi
	local d
	for d in "/sys/fs/cgroup/unified/$CG_NAME" "/sys/fs/cgroup/systemd/$CG_NAME"; do
		if [[ -d "$d" ]]; then find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true; fi
	done
	rm -f "$FLEET_STATE/size"
	log "fleet down"
}

cmd_ctl() {
	ns_exists "$FLEET_CTL_NS" || die "no fleet is up"
	export ANSIBLE_CONFIG="$FLEET_OUT/ansible.cfg"
	exec ip netns exec "$FLEET_CTL_NS" "$@"
}

cmd_status() {
	local hd name
	for hd in "$FLEET_STATE"/fleet-h*; do
		[[ -d "$hd" ]] || continue
		name="$(basename "$hd")"
		printf '%s ip=%s launcher=%s nspawn=%s\n' "$name" "$(host_ip "$(host_idx "$name")")" \
			"$(cat "$hd/launcher.pid" 2>/dev/null)" "$(cat "$hd/nspawn.pid" 2>/dev/null)"
	done
}

main() {
	local cmd="${1:-}"
	shift || true
	case "$cmd" in
	base) cmd_base ;;
	up) cmd_up "$@" ;;
	down) cmd_down ;;
	ctl) cmd_ctl "$@" ;;
	kill) cmd_kill "$1" ;;
	start) cmd_start "$1" ;;
	status) cmd_status ;;
	*)
		sed -n '2,12p' "$0" >&2
		exit 2
		;;
	esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	main "$@"
fi
