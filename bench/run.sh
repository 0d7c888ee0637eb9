#!/usr/bin/env bash
# All benchmarks (tests/run.sh bench). Each prints ratios against a baseline
# measured in the same run; results also go to bench/results/.
#
#   bench/run.sh                 backup (1 GiB), S3 upload (2 GiB, Ceph RGW), fleet rollout (3 and 6 hosts)
#   bench/run.sh backup|s3|fleet only that one
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
PY=${PALHM_PY:-python3}
mkdir -p "$ROOT/bench/results"
which=("$@")
((${#which[@]})) || which=(backup s3 fleet)

for b in "${which[@]}"; do
    case $b in
        backup)
            echo "== backup: palhm vs the shell pipeline =="
            ANSIBLE_CONFIG="$ROOT/ansible.cfg" "$PY" "$ROOT/bench/backup_bench.py" \
                --size-mib "${PALHM_BENCH_MIB:-1024}" --rounds "${PALHM_BENCH_ROUNDS:-3}" \
                | tee "$ROOT/bench/results/backup.txt" ;;
        s3)
            echo "== s3: palhm vs aws s3 cp, on Ceph RGW =="
            "$PY" "$ROOT/bench/s3_upload.py" --size-mib "${PALHM_BENCH_S3_MIB:-2048}" \
                | tee "$ROOT/bench/results/s3_upload.txt" ;;
        fleet)
            echo "== fleet: role rollout to 3 and 6 hosts =="
            "$ROOT/bench/fleet_rollout.sh" 3 6 ;;
        *) echo "bench/run.sh: unknown benchmark $b (backup, s3, fleet)" >&2; exit 2 ;;
    esac
done
