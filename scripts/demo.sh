#!/usr/bin/env bash
# The quick-start demo, from nothing: makes its own virtual environment
# (.venv-demo/), installs ansible-core and this collection (linked from the
# checkout), runs playbooks/demo.yml on localhost, then lists the copies with
# the palhm command. Backups land in demo/backups inside the checkout.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
venv="$repo/.venv-demo"
cd "$repo"

need=()
for cmd in tar zstd ps; do command -v "$cmd" >/dev/null || need+=("$cmd")
done
if ((${#need[@]})); then
    echo "demo: installing ${need[*]} (Debian packages)" >&2
    apt-get update -qq && apt-get install -y -qq zstd tar procps >/dev/null
fi

# The controller needs ansible-core 2.19 or newer (the oldest release the
# tests run, and the collection's requires_ansible), which needs Python 3.11+:
# 2.19 runs on 3.11, 2.20 and newer need 3.12+.
pick_python() {
    local root cand
    root=$(pyenv root 2>/dev/null || true)
    for cand in ${root:+"$root"/versions/3.1[1-9]*/bin/python3} \
            /usr/bin/python3.13 /usr/bin/python3.12 /usr/bin/python3.11 /usr/bin/python3; do
        [[ -x $cand ]] || continue
        "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || continue
        if "$cand" -c 'import venv, ensurepip' 2>/dev/null; then
            echo "$cand"; return 0
        fi
    done
    echo "demo: the controller needs Python 3.11+ with venv (ansible-core 2.19+); none found" \
         "(Debian/Ubuntu: apt-get install python3-venv; managed hosts only need Python 3.9+)" >&2
    return 1
}

if [[ ! -x $venv/bin/ansible-playbook ]]; then
    py=$(pick_python)
    spec='ansible-core>=2.19,<2.20'
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 12))' && spec='ansible-core>=2.19'
    echo "demo: creating $venv with $py ($spec)" >&2
    "$py" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "$spec"
fi

# The collection: this checkout, linked where ansible.cfg looks for it.
"$repo/scripts/dev-link.sh" >/dev/null
export ANSIBLE_CONFIG="$repo/ansible.cfg"

"$venv/bin/ansible-playbook" -e "ansible_python_interpreter=$venv/bin/python3" -e "palhm_demo_dir=$repo/demo" playbooks/demo.yml

echo
echo "== palhm list demo (the same engine as a command) =="
PYTHONPATH="$repo/plugins/module_utils" "$venv/bin/python3" -m palhm -f demo/palhm.json list demo
echo
echo "== palhm verify demo =="
PYTHONPATH="$repo/plugins/module_utils" "$venv/bin/python3" -m palhm -f demo/palhm.json verify demo
