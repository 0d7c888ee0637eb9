#!/usr/bin/env bash
# The reliability campaign of palhm (issue 8): kills, cancels, full disk,
# flaky S3, concurrency, fuzzed configs and module arguments, safety.
#
#   tests/reliability/run.sh                short mode (CI, a few minutes)
#   tests/reliability/run.sh --long         the full counts (50 kills per backend, 10,000 fuzzed configs, ...)
#   tests/reliability/run.sh --planted      each scenario against an engine copy with a planted defect:
#                                           passes only when every defect is caught
#   tests/reliability/run.sh --only kills-localfs,flaky-s3 [--count N] [--seed N]
#
# Prints the table (scenario, runs, failures, copies lost, incomplete copies
# taken as complete) and exits non-zero on any failure or loss. Results also
# go to tests/output/reliability/<mode>.json. Needs root (tmpfs mount for the
# full-disk scenario) and the test venv (hypothesis, boto3, moto[server]).
# See docs/reliability.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
py=${PALHM_PY:-${PALHM_CACHE:-/var/cache/palhm-test}/venv-ansible219-py311/bin/python3}
[[ -x $py ]] || py=python3

mode=short
args=()
for a in "$@"; do
    case $a in
        --short) ;;                         # the default (tests/run.sh all passes it)
        --long) mode=long; args+=(--long) ;;
        --planted) mode=planted; args+=(--planted) ;;
        *) args+=("$a") ;;
    esac
done

[[ $(id -u) == 0 ]] || { echo "run.sh: the campaign needs root (tmpfs mount)" >&2; exit 2; }
"$py" -c 'import hypothesis, boto3, moto' 2>/dev/null \
    || { echo "run.sh: $py lacks hypothesis/boto3/moto: run 'tests/run.sh setup'" >&2; exit 2; }

mkdir -p "$repo/tests/output/reliability"
pydir=$(dirname "$py")
export PATH="$pydir:$PATH"   # moto_server next to the venv's python
exec "$py" "$here/campaign.py" --json "$repo/tests/output/reliability/$mode.json" "${args[@]}"
