#!/usr/bin/env bash
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# A single-node Ceph cluster with a RADOS Gateway on 127.0.0.1: a real S3
# server for palhm's aws-s3 tests and benchmarks.
#
#   ceph_rgw.sh start    bring it up (reusing the cluster made earlier when there
#                        is one), wait until S3 answers, print shell variables:
#                        PALHM_S3_ENDPOINT, PALHM_S3_ACCESS_KEY, PALHM_S3_SECRET_KEY,
#                        PALHM_S3_REGION. Idempotent: when already up, only prints.
#   ceph_rgw.sh stop     stop the daemons it started (by pid), keep the data
#   ceph_rgw.sh reset    stop, then delete the cluster (next start makes a new one)
#   ceph_rgw.sh status   exit 0 when S3 answers
#   ceph_rgw.sh env      print the variables (no start)
#
# Needs the Debian packages ceph-mon ceph-osd radosgw ceph-common (root).
# One mon, one OSD (bluestore on a sparse file, or memstore with
# PALHM_CEPH_STORE=memstore), one radosgw (beast). Storage classes STANDARD_IA
# and GLACIER exist besides STANDARD. Nothing listens beyond 127.0.0.1.
#
# Knobs: PALHM_CEPH_DIR (default ${PALHM_CACHE:-/var/cache/palhm-test}/ceph),
# PALHM_CEPH_STORE (bluestore|memstore), PALHM_CEPH_RGW_PORT (default 37480),
# PALHM_CEPH_MON_PORT (default 36789; v1 uses the port + 1),
# PALHM_CEPH_TIMEOUT (seconds to come up, default 60).
set -euo pipefail

DIR=${PALHM_CEPH_DIR:-${PALHM_CACHE:-/var/cache/palhm-test}/ceph}
STORE=${PALHM_CEPH_STORE:-bluestore}
TIMEOUT=${PALHM_CEPH_TIMEOUT:-60}
ACCESS_KEY=palhmtestaccesskey01
SECRET_KEY=palhmtestsecretkey0000000000000000000001
USER_ID=palhm-test
CONF=$DIR/ceph.conf
LOG=$DIR/log/ceph_rgw.log
PKGS=(ceph-mon ceph-osd radosgw ceph-common)

say() { printf 'ceph_rgw.sh: %s\n' "$*" >&2; }
die() {
    printf 'ceph_rgw.sh: error: %s\n' "$*" >&2
    if [[ -d $DIR/log ]]; then
        local f
        for f in "$DIR"/log/*.log; do
            [[ -s $f ]] || continue
            printf -- '--- last lines of %s\n' "$f" >&2
            tail -n 15 "$f" >&2
        done
    fi
    exit 1
}

check_packages() {
    local p missing=()
    for p in "${PKGS[@]}"; do
        [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true) == ii* ]] || missing+=("$p")
    done
    ((${#missing[@]} == 0)) || die "missing Debian packages: ${missing[*]} (apt-get install -y --no-install-recommends ${PKGS[*]})"
    [[ $(id -u) == 0 ]] || die "must run as root"
}

load_ports() {
    if [[ -f $DIR/ports.env ]]; then
        # shellcheck disable=SC1091
        . "$DIR/ports.env"
    else
        MON_PORT=${PALHM_CEPH_MON_PORT:-36789}
        RGW_PORT=${PALHM_CEPH_RGW_PORT:-37480}
    fi
    ENDPOINT="http://127.0.0.1:$RGW_PORT"
}

print_env() {
    printf 'PALHM_S3_ENDPOINT=%s\n' "$ENDPOINT"
    printf 'PALHM_S3_ACCESS_KEY=%s\n' "$ACCESS_KEY"
    printf 'PALHM_S3_SECRET_KEY=%s\n' "$SECRET_KEY"
    printf 'PALHM_S3_REGION=%s\n' "us-east-1"
}

s3_answers() {
    local code
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$ENDPOINT/" 2>/dev/null || true)
    [[ $code == 200 || $code == 403 ]]
}

pid_alive() {
    local f=$1 pid
    [[ -f $f ]] || return 1
    pid=$(<"$f")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

port_free() {
    ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

write_conf() {
    local fsid=$1
    cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$((MON_PORT + 1))]
public addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
keyring = /dev/null
run dir = $DIR/run
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
log to stderr = false
err to stderr = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
mon max pg per osd = 1000
osd objectstore = $STORE
osd data = $DIR/osd/\$cluster-\$id
mon data = $DIR/mon/\$cluster-\$id
# Outside the OSD data dir (see RECIPES.md); sparse.
bluestore block path = $DIR/block/\$cluster-\$id.img
bluestore block create = true
bluestore block size = 68719476736
bluestore block db create = false
bluestore block wal create = false
bluestore fsck on mkfs = false
bdev enable discard = false
osd memory target = 536870912
memstore device bytes = 4294967296
crash dir = $DIR/crash

[client.rgw.gw]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $DIR/rgw
# Without this radosgw hangs on get_initial_auth_request returned -13.
ms mon client mode = crc
rgw dns name = 127.0.0.1
rgw enable usage log = false
rgw thread pool size = 64
# Reclaim deleted objects (and their multipart tails) within seconds, not
# hours: tests and benchmarks write and delete gigabytes.
rgw gc obj min wait = 0
rgw gc processor period = 5
rgw gc processor max time = 5
EOF
}

ceph_cmd() { ceph -c "$CONF" --connect-timeout 10 "$@"; }
admin() { radosgw-admin -c "$CONF" -n client.rgw.gw "$@"; }

# The daemons must not inherit fd 8 (the flock of `lock`): they would hold the
# lock for their whole life and the next stop/start would wait on it.
start_mon() { pid_alive "$DIR/run/mon.a.pid" || ceph-mon -c "$CONF" -i a 8>&-; }
start_osd() { pid_alive "$DIR/run/osd.0.pid" || ceph-osd -c "$CONF" -i 0 8>&-; }
start_rgw() { pid_alive "$DIR/run/client.rgw.gw.pid" || radosgw -c "$CONF" -n client.rgw.gw 8>&-; }

wait_for() {
    local what=$1 deadline=$2; shift 2
    until "$@" >/dev/null 2>&1; do
        (($(date +%s) < deadline)) || die "$what did not come up within ${TIMEOUT}s"
        sleep 0.5
    done
}

osd_up() { ceph_cmd osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1'; }

create_cluster() {
    local deadline=$1 fsid uuid
    say "creating a new cluster in $DIR ($STORE)"
    rm -rf "$DIR"
    mkdir -p "$DIR"/{run,log,mon,osd,block,rgw,crash}
    MON_PORT=${PALHM_CEPH_MON_PORT:-36789}
    RGW_PORT=${PALHM_CEPH_RGW_PORT:-37480}
    local p
    for p in "$MON_PORT" "$((MON_PORT + 1))" "$RGW_PORT"; do
        port_free "$p" || die "port $p on 127.0.0.1 is in use (set PALHM_CEPH_MON_PORT / PALHM_CEPH_RGW_PORT)"
    done
    ENDPOINT="http://127.0.0.1:$RGW_PORT"
    fsid=$(cat /proc/sys/kernel/random/uuid)
    write_conf "$fsid"
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$((MON_PORT + 1))]" \
        "$DIR/monmap" >>"$LOG" 2>&1 || die "monmaptool failed"
    ceph-authtool --create-keyring "$DIR/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >>"$LOG" 2>&1
    ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/mon.keyring" >>"$LOG" 2>&1 \
        || die "ceph-mon --mkfs failed"
    start_mon >>"$LOG" 2>&1 || die "ceph-mon did not start"
    wait_for "ceph-mon" "$deadline" ceph_cmd mon stat
    uuid=$(cat /proc/sys/kernel/random/uuid)
    local id
    id=$(ceph_cmd osd new "$uuid" 2>>"$LOG") || die "ceph osd new failed"
    [[ $id == 0 ]] || die "expected osd id 0, got $id"
    mkdir -p "$DIR/osd/ceph-0"
    ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$uuid" >>"$LOG" 2>&1 || die "ceph-osd --mkfs failed"
    start_osd >>"$LOG" 2>&1 || die "ceph-osd did not start"
    wait_for "ceph-osd" "$deadline" osd_up
    # First radosgw start creates the realm-less default zone and its pools.
    start_rgw >>"$LOG" 2>&1 || die "radosgw did not start"
    wait_for "radosgw" "$deadline" s3_answers
    local cls
    for cls in STANDARD_IA GLACIER; do
        admin zonegroup placement add --rgw-zonegroup default --placement-id default-placement \
            --storage-class "$cls" >>"$LOG" 2>&1 || die "zonegroup placement add $cls failed"
        admin zone placement add --rgw-zone default --placement-id default-placement \
            --storage-class "$cls" --data-pool default.rgw.buckets.data >>"$LOG" 2>&1 \
            || die "zone placement add $cls failed"
    done
    admin user create --uid="$USER_ID" --display-name="palhm tests" --access-key="$ACCESS_KEY" \
        --secret-key="$SECRET_KEY" >>"$LOG" 2>&1 || die "radosgw-admin user create failed"
    # radosgw reads the placement targets at start.
    stop_daemon client.rgw.gw
    start_rgw >>"$LOG" 2>&1 || die "radosgw did not restart"
    printf 'MON_PORT=%s\nRGW_PORT=%s\n' "$MON_PORT" "$RGW_PORT" >"$DIR/ports.env"
    touch "$DIR/ready"
}

stop_daemon() {
    local name=$1 f pid i
    f="$DIR/run/$name.pid"
    [[ -f $f ]] || return 0
    pid=$(<"$f")
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        # Only a ceph daemon of ours: check the command line names our config.
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$CONF"; then
            kill -TERM "$pid" 2>/dev/null || true
            for ((i = 0; i < 100; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            if kill -0 "$pid" 2>/dev/null; then
                kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
    fi
    rm -f "$f"
}

cmd_start() {
    check_packages
    load_ports
    if [[ -f $DIR/ready ]] && s3_answers && pid_alive "$DIR/run/client.rgw.gw.pid"; then
        print_env
        return 0
    fi
    local t0 deadline
    t0=$(date +%s)
    deadline=$((t0 + TIMEOUT))
    mkdir -p "$DIR/log"
    if [[ -f $DIR/ready && -f $CONF ]] && grep -q "osd objectstore = $STORE\$" "$CONF"; then
        say "starting the cluster in $DIR"
        start_mon >>"$LOG" 2>&1 || die "ceph-mon did not start"
        wait_for "ceph-mon" "$deadline" ceph_cmd mon stat
        start_osd >>"$LOG" 2>&1 || die "ceph-osd did not start"
        wait_for "ceph-osd" "$deadline" osd_up
        start_rgw >>"$LOG" 2>&1 || die "radosgw did not start"
    else
        cmd_stop
        create_cluster "$deadline"
    fi
    wait_for "radosgw S3 on $ENDPOINT" "$deadline" s3_answers
    say "up in $(($(date +%s) - t0))s on $ENDPOINT"
    print_env
}

cmd_stop() {
    [[ -d $DIR/run ]] || return 0
    stop_daemon client.rgw.gw
    stop_daemon osd.0
    stop_daemon mon.a
}

# One start/stop/reset at a time (several test runs may share the cluster).
lock() {
    mkdir -p "$(dirname "$DIR")"
    exec 8>"${DIR%/}.lock"
    flock -w 120 8 || die "another ceph_rgw.sh holds ${DIR%/}.lock"
}

case ${1:-} in
    start) lock; cmd_start ;;
    stop) lock; cmd_stop ;;
    reset) lock; cmd_stop; rm -rf "$DIR" ;;
    status) load_ports; s3_answers ;;
    env) load_ports; print_env ;;
    *) sed -n '6,24p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
