#!/usr/bin/env bash
# Steps are called indirectly (run_step NAME FUNCTION ARGS), which shellcheck
# takes for unreachable code.
# shellcheck disable=SC2317
#
# The single entry point for every test of the palhm.palhm collection.
#
#   tests/run.sh setup                 apt packages + cached test venvs (idempotent)
#   tests/run.sh sanity [ARGS...]      ansible-test sanity (2.19/py3.11, newest/py3.13),
#                                      compile+import on py3.9/3.10/3.12, ansible-lint;
#                                      with ARGS (e.g. --test pylint) only the two main runs
#   tests/run.sh units [ARGS...]       ansible-test units on both ansible-core versions
#   tests/run.sh integration [TGT...]  ansible-test integration on both versions
#   tests/run.sh functional [PYTEST ARGS...]   pytest tests/functional (CLI tests)
#   tests/run.sh package                demo, collection build and install (nothing generated ships)
#   tests/run.sh readme                 the README's marked commands, verbatim, in a fresh clone
#   tests/run.sh fleet|reliability|bench       tests/fleet/run.sh, tests/reliability/run.sh, bench/run.sh
#   tests/run.sh lint                  ansible-lint only
#   tests/run.sh docs                  antsibull-docs lint, generated module docs current, antsibull-changelog lint
#   tests/run.sh all                   everything above but bench (what .ci/run does)
#
# Works from nothing on a Debian bookworm machine as root with PyPI and the
# Debian mirror reachable and pyenv's Pythons installed. Everything slow is
# cached outside the repo under ${PALHM_CACHE:-/var/cache/palhm-test}.
#
# Environment knobs:
#   PALHM_CACHE        cache dir (venvs, layouts)     default /var/cache/palhm-test
#   PALHM_TEST_VERBOSE 1 = stream step output to the terminal as well (single
#                      subcommands always stream; `all` only logs)
#   PALHM_ANSIBLE_SETS which ansible-core sets to use: "219 new" (default), "219", "new"
#
# Steps export to the scripts they call (fleet, reliability, bench):
#   PALHM_REPO, PALHM_CACHE, PALHM_VENV_219, PALHM_VENV_NEW, PALHM_PY
#   (python3 of the 2.19/py3.11 venv) and PATH with that venv's bin first.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
CACHE=${PALHM_CACHE:-/var/cache/palhm-test}
LOGDIR="$REPO/tests/output/logs"
VENV_219="$CACHE/venv-ansible219-py311"
VENV_NEW="$CACHE/venv-ansiblenew-py313"
ANSIBLE_219_SPEC='ansible-core>=2.19.0,<2.20'
ANSIBLE_NEW_SPEC='ansible-core'
# Bump when the way the venvs are built changes (forces a rebuild).
VENV_RECIPE=2
ANSIBLE_SETS=${PALHM_ANSIBLE_SETS:-219 new}
# Pythons used for compile/import sanity besides the two venv Pythons.
EXTRA_SANITY_PYTHONS=(3.9 3.10 3.12)

# ---------------------------------------------------------------------------
# Debian packages the tests need. ONE list: append what your part needs here
# (one package or a few per line, with a comment saying who needs it).
# ---------------------------------------------------------------------------
APT_PACKAGES=(
    zstd xz-utils tar gzip     # engine pipelines (core.json Execs)
    python3 python3-venv       # CLI on the host Python, role tests
    python-is-python3          # `#!/usr/bin/env python`, the shebang ansible-test's sanity allows
    git rsync                  # collection layout for ansible-test
    shellcheck                 # ansible-test sanity skips its shellcheck test without it
    ca-certificates
    # Real servers and clients the tests drive (already used by tests in the repo):
    s-nail bsd-mailx           # boot report through mailx (functional, integration)
    exim4-daemon-light         # real MTA for the sendmail/smtp boot-report targets
    unbound dnsutils           # DNSSEC lab (tests/helpers/dnssec_lab.py), dig in core.json
    ceph-mon ceph-osd radosgw ceph-common   # S3 on Ceph RGW (tests/helpers/ceph_rgw.sh)
    systemd-container debootstrap openssh-client iproute2   # fleet (tests/fleet)
    prometheus prometheus-node-exporter   # promtool check/test rules, node_exporter + Prometheus end to end (test_alerts.py)
    chromium chromium-driver   # the fleet report's HTML rendered headless (test_report_playbook.py)
)
# --- end of APT_PACKAGES ---------------------------------------------------

export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PALHM_REPO="$REPO" PALHM_CACHE="$CACHE" PALHM_VENV_219="$VENV_219" PALHM_VENV_NEW="$VENV_NEW"
export PALHM_PY="$VENV_219/bin/python3"
# ansible-test / ansible must not pick up a developer's ansible.cfg by accident;
# each step sets what it needs.
unset ANSIBLE_CONFIG

# First line of `TOOL --version`, read whole (a `| head -1` makes ansible
# report a broken pipe).
tool_version() {
    local out
    out=$(NO_COLOR=1 "$1" --version 2>/dev/null) || true
    printf '%s\n' "${out%%$'\n'*}"
}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'run.sh: error: %s\n' "$*" >&2; exit 2; }

pyenv_root() {
    if [[ -n ${PYENV_ROOT:-} && -d $PYENV_ROOT/versions ]]; then
        printf '%s\n' "$PYENV_ROOT"
    elif command -v pyenv >/dev/null 2>&1; then
        pyenv root
    else
        printf '%s\n' "$HOME/.pyenv"
    fi
}

# The real interpreter (never a shim) of the newest installed patch of MINOR.
pyenv_python() {
    local minor=$1 root best=''
    root=$(pyenv_root)
    local d
    for d in "$root"/versions/"$minor".*; do
        [[ -x $d/bin/python3 ]] || continue
        # only plain X.Y.Z releases (no -dev, no t builds)
        [[ ${d##*/} =~ ^${minor//./\\.}\.[0-9]+$ ]] || continue
        if [[ -z $best ]] || [[ ${d##*.} -gt ${best##*.} ]]; then best=$d; fi
    done
    [[ -n $best ]] || die "no pyenv Python $minor under $root/versions"
    printf '%s\n' "$best/bin/python3"
}

# ---------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------
apt_missing() {
    local p status
    for p in "${APT_PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
        [[ $status == ii* ]] || printf '%s\n' "$p"
    done
}

setup_apt() {
    local missing
    mapfile -t missing < <(apt_missing)
    if ((${#missing[@]} == 0)); then
        say "apt: all ${#APT_PACKAGES[@]} packages present"
        return 0
    fi
    say "apt: installing ${missing[*]}"
    # Update the lists only when they are missing or older than a day, and
    # once more if the install fails on stale lists.
    local lists=/var/lib/apt/lists fresh=0
    if compgen -G "$lists/*_Packages*" >/dev/null \
        && [[ -z $(find "$lists" -maxdepth 1 -name '*_Packages*' -mmin +1440 -print -quit) ]]; then
        fresh=1
    fi
    if ((fresh == 0)); then
        apt-get update -qq
    fi
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
        ((fresh == 1)) || return 1
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
}

venv_stamp() {
    # Everything the venv content depends on.
    local py=$1 spec=$2; shift 2
    {
        printf 'recipe=%s\npython=%s\n' "$VENV_RECIPE" "$py"
        "$py" -c 'import sys; print(sys.version)'
        printf 'spec=%s\n' "$spec"
        # contents only: the checkout's path must not matter (CI clones elsewhere)
        local f
        for f in "$@"; do sha256sum <"$f"; done
    } | sha256sum | cut -d' ' -f1
}

# pip without the machine-wide config's notices about missing local index
# dirs (one per package; they bury the real error in the log tail).
quiet_pip() {
    local py=$1; shift
    "$py" -m pip "$@" 2>&1 | { grep -v "^WARNING: Location 'file:.*' is ignored" || true; }
}

make_venv() {
    local dir=$1 py=$2 spec=$3; shift 3
    local reqs=("$@") want have=''
    want=$(venv_stamp "$py" "$spec" "${reqs[@]}")
    [[ -f $dir/.palhm-stamp ]] && have=$(<"$dir/.palhm-stamp")
    if [[ $want == "$have" && -x $dir/bin/ansible-test ]]; then
        say "venv $dir is up to date"
        return 0
    fi
    # $dir is a symlink to venvs/NAME-STAMP. A new venv is built beside the
    # old one and the link switched at the end, so a run that is using the
    # old venv at that moment keeps working (venvs cannot be moved: their
    # scripts name their own path). The stamp is written last: an
    # interrupted build is redone.
    local name=${dir##*/} real
    real="$CACHE/venvs/$name-${want:0:16}"
    say "building venv $dir -> $real ($py, $spec)"
    mkdir -p "$CACHE/venvs"
    rm -rf -- "$real"
    "$py" -m venv "$real"
    local rargs=() r
    for r in "${reqs[@]}"; do rargs+=(-r "$r"); done
    quiet_pip "$real/bin/python3" install -q --upgrade pip setuptools wheel
    quiet_pip "$real/bin/python3" install -q "$spec" "${rargs[@]}"
    printf '%s\n' "$want" >"$real/.palhm-stamp"
    local previous=''
    if [[ -L $dir ]]; then
        previous=$(readlink -f -- "$dir")
    elif [[ -e $dir ]]; then
        # A venv from before this layout: moved aside (removed next time),
        # its path now leads to the new venv.
        previous="$CACHE/venvs/$name-legacy.$$"
        mv -T -- "$dir" "$previous"
    fi
    ln -sfn -- "$real" "$dir.tmp.$$"
    mv -T -- "$dir.tmp.$$" "$dir"
    # Keep the new venv and the one just replaced (a run may still use it).
    local old
    for old in "$CACHE/venvs/$name"-*; do
        [[ $old == "$real" || $old == "$previous" ]] && continue
        rm -rf -- "$old"
    done
    tool_version "$dir/bin/ansible" >&2
}

# ansible-test bootstraps pip in every venv it makes by downloading
# get-pip-<ver>.py, which cannot be fetched here. It first looks in
# ~/.ansible/test/cache/get_pip_<ver with _>.py, so put a stand-in there that
# uses the interpreter's own ensurepip and then pip-installs what was asked.
install_get_pip_standin() {
    local venv=$1 versions v f
    # get_venv_packages() in python_requirements.py: default_packages = dict(pip='24.2', ...)
    versions=$("$venv/bin/python3" - <<'EOF'
import pathlib, re, ansible_test
src = pathlib.Path(ansible_test.__file__).parent / '_internal' / 'python_requirements.py'
text = src.read_text(encoding='utf-8')
body = text[text.index('def get_venv_packages'):]
print(' '.join(sorted(set(re.findall(r"""\bpip\s*=\s*['"](\d+(?:\.\d+)+)['"]""", body)))))
EOF
)
    [[ -n $versions ]] || die "cannot find the pip version ansible-test wants in $venv"
    mkdir -p "$HOME/.ansible/test/cache"
    for v in $versions; do
        f="$HOME/.ansible/test/cache/get_pip_${v//./_}.py"
        cat >"$f.tmp" <<'EOF'
# Stand-in for get-pip.py written by palhm's tests/run.sh: get-pip cannot be
# downloaded here, so bootstrap pip with ensurepip, then install what
# ansible-test asked for from the package index.
import subprocess
import sys

args = sys.argv[1:]
no_setuptools = '--no-setuptools' in args
drop = {'--no-setuptools', '--no-wheel', '--disable-pip-version-check'}
args = [a for a in args if a not in drop]
subprocess.run([sys.executable, '-m', 'ensurepip', '--default-pip'], check=True,
               stdout=subprocess.DEVNULL)
if args:
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--disable-pip-version-check'] + args,
                   check=True)
if no_setuptools:
    subprocess.run([sys.executable, '-m', 'pip', 'uninstall', '--yes', '--quiet',
                    '--disable-pip-version-check', 'setuptools'], check=False)
EOF
        mv "$f.tmp" "$f"
        say "get-pip stand-in: $f"
    done
}

cmd_setup() {
    mkdir -p "$CACHE"
    # Two runs at once (two engineers, or a run and CI) must not build the
    # same venv together.
    exec 9>"$CACHE/setup.lock"
    flock 9
    setup_apt
    local py311 py313
    py311=$(pyenv_python 3.11)
    py313=$(pyenv_python 3.13)
    local m
    for m in "${EXTRA_SANITY_PYTHONS[@]}"; do pyenv_python "$m" >/dev/null; done
    make_venv "$VENV_219" "$py311" "$ANSIBLE_219_SPEC" "$REPO/tests/requirements-test.txt"
    make_venv "$VENV_NEW" "$py313" "$ANSIBLE_NEW_SPEC" "$REPO/tests/requirements-test.txt" \
        "$REPO/tests/requirements-lint.txt"
    install_get_pip_standin "$VENV_219"
    install_get_pip_standin "$VENV_NEW"
    "$REPO/scripts/dev-link.sh" >/dev/null
    exec 9>&-
}

need_setup() {
    [[ -x $VENV_219/bin/ansible-test && -x $VENV_NEW/bin/ansible-test ]] \
        || die "test venvs missing: run 'tests/run.sh setup' first"
}

# ---------------------------------------------------------------------------
# Collection layout for ansible-test: a copy at
# $T/ansible_collections/palhm/palhm. A copy, not a symlink: ansible-test
# takes the physical cwd, which would resolve a symlink back to the repo and
# lose the ansible_collections/NS/NAME path. The copy holds what git would
# (tracked + untracked, minus .gitignore), so .ansible/collections (a symlink
# back to the repo), tests/output and venvs never get in.
# ---------------------------------------------------------------------------
LAYOUT_ROOT=''
LAYOUT_DEST=''
cleanup_layout() {
    if [[ -n $LAYOUT_ROOT && -d $LAYOUT_ROOT ]]; then
        rm -rf -- "$LAYOUT_ROOT"
    fi
}

# Sets LAYOUT_ROOT (holds ansible_collections/) and LAYOUT_DEST (the
# collection dir) to a fresh copy of the repo. Each step runs in its own
# subshell whose EXIT trap removes the copy (see run_step).
make_layout() {
    mkdir -p "$CACHE/tmp"
    if [[ -z $LAYOUT_ROOT ]]; then
        LAYOUT_ROOT=$(mktemp -d "$CACHE/tmp/layout.XXXXXX")
    fi
    LAYOUT_DEST="$LAYOUT_ROOT/ansible_collections/palhm/palhm"
    rm -rf -- "$LAYOUT_DEST"
    mkdir -p "$LAYOUT_DEST"
    if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
        # What git sees (tracked + untracked, minus ignored), without index
        # entries deleted from the work tree.
        git -C "$REPO" ls-files -z --cached --others --exclude-standard \
            | "$VENV_219/bin/python3" -c '
import os, sys
root = os.fsencode(sys.argv[1])
names = sorted(set(n for n in sys.stdin.buffer.read().split(b"\0") if n))
out = [n for n in names if os.path.lexists(os.path.join(root, n))]
sys.stdout.buffer.write(b"".join(n + b"\0" for n in out))
' "$REPO" \
            | rsync -a --from0 --files-from=- "$REPO/" "$LAYOUT_DEST/"
    else
        rsync -a --exclude=/.git --filter=':- .gitignore' \
            --exclude=/.ansible --exclude=/tests/output "$REPO/" "$LAYOUT_DEST/"
    fi
}

# Copy ansible-test's results back into the repo's tests/output/ansible-test.
save_layout_output() {
    local dest=$1 tag=$2
    if [[ -d $dest/tests/output ]]; then
        mkdir -p "$REPO/tests/output/ansible-test/$tag"
        # .tmp holds ansible-test's scratch and delegation venv links.
        rsync -a --delete --exclude=/.tmp "$dest/tests/output/" "$REPO/tests/output/ansible-test/$tag/"
    fi
}

venv_for() { case $1 in 219) echo "$VENV_219" ;; new) echo "$VENV_NEW" ;; *) die "bad set $1" ;; esac; }
python_for() { case $1 in 219) echo 3.11 ;; new) echo 3.13 ;; *) die "bad set $1" ;; esac; }

# PATH with the venv first, then the real pyenv interpreters (never shims).
path_for() {
    local venv=$1 p extra=''
    for p in 3.9 3.10 3.11 3.12 3.13; do
        extra+="$(dirname "$(pyenv_python "$p")"):"
    done
    local clean
    clean=$(printf '%s' "$PATH" | tr ':' '\n' | grep -v -e '/shims$' -e '^$' | paste -sd: -)
    printf '%s\n' "$venv/bin:$extra$clean"
}

# Run ansible-test from set $1 in a fresh layout: ansible_test_in SET TAG ARGS...
ansible_test_in() {
    local set=$1 tag=$2; shift 2
    local venv dest rc=0
    venv=$(venv_for "$set")
    make_layout
    dest=$LAYOUT_DEST
    say "ansible-test $* ($(tool_version "$venv/bin/ansible"))"
    (
        cd "$dest"
        PATH=$(path_for "$venv") exec "$venv/bin/ansible-test" "$@" --color no
    ) || rc=$?
    save_layout_output "$dest" "$tag"
    return "$rc"
}

# ---------------------------------------------------------------------------
# Steps. Each prints to stdout/stderr; run_step handles logs and the summary.
# A step returns 0 (pass), 1.. (fail) or 99 (not present: nothing to test).
# ---------------------------------------------------------------------------
NOT_PRESENT=99

step_sanity() {
    local set=$1; shift
    need_setup
    ansible_test_in "$set" "sanity-$set" sanity --venv --python "$(python_for "$set")" -v "$@"
}

step_sanity_extra() {
    local pyver=$1
    need_setup
    # compile + import only: the other sanity tests do not depend on the
    # target Python. tests/config.yml limits modules to python_requires >=3.9.
    ansible_test_in 219 "sanity-py$pyver" sanity --venv --python "$pyver" \
        --test compile --test import -v
}

step_lint() {
    need_setup
    local dest
    make_layout
    dest=$LAYOUT_DEST
    say "ansible-lint ($(tool_version "$VENV_NEW/bin/ansible-lint"))"
    (
        cd "$dest"
        # ansible.cfg's collections_path (./.ansible/collections) is not in
        # the copy; the variable wins over it anyway.
        export ANSIBLE_COLLECTIONS_PATH="$LAYOUT_ROOT"
        PATH=$(path_for "$VENV_NEW") exec "$VENV_NEW/bin/ansible-lint" --offline --profile production --nocolor
    )
}

# The field's doc tools: module/role reference generated by antsibull-docs
# is up to date, the docs' markup lints, the changelog fragments lint.
step_docs() {
    need_setup
    local bin="$VENV_NEW/bin"
    [[ -x $bin/antsibull-docs && -x $bin/antsibull-changelog ]] \
        || die "antsibull-docs/antsibull-changelog missing from $VENV_NEW: run 'tests/run.sh setup'"
    make_layout
    local path
    path="$bin:$(path_for "$VENV_NEW")"
    say "antsibull-docs lint-collection-docs --plugin-docs"
    (cd "$LAYOUT_DEST" && PATH=$path ANSIBLE_COLLECTIONS_PATH=$LAYOUT_ROOT antsibull-docs lint-collection-docs --plugin-docs .)
    say "antsibull-changelog lint"
    (cd "$REPO" && PATH=$path antsibull-changelog lint)
    say "scripts/module-docs.sh --check"
    PATH=$path "$REPO/scripts/module-docs.sh" --check
}

have_unit_tests() {
    [[ -d $REPO/tests/unit ]] && [[ -n $(find "$REPO/tests/unit" -name 'test_*.py' -print -quit) ]]
}

step_units() {
    local set=$1; shift
    need_setup
    if ! have_unit_tests; then
        echo "no tests/unit/**/test_*.py"
        return "$NOT_PRESENT"
    fi
    local req=()
    [[ -f $REPO/tests/unit/requirements.txt ]] && req=(--requirements)
    ansible_test_in "$set" "units-$set" units --venv --python "$(python_for "$set")" "${req[@]}" "$@"
}

integration_targets() {
    local d
    [[ -d $REPO/tests/integration/targets ]] || return 0
    for d in "$REPO"/tests/integration/targets/*/; do
        [[ -f $d/aliases ]] && basename "$d"
    done
}

step_integration() {
    local set=$1; shift
    need_setup
    local targets=("$@")
    if ((${#targets[@]} == 0)); then
        mapfile -t targets < <(integration_targets)
        if ((${#targets[@]} == 0)); then
            echo "no tests/integration/targets/*/aliases"
            return "$NOT_PRESENT"
        fi
        targets=()   # no names: ansible-test runs every supported target
    fi
    local req=()
    [[ -f $REPO/tests/integration/requirements.txt ]] && req=(--requirements)
    ansible_test_in "$set" "integration-$set" integration --venv \
        --python "$(python_for "$set")" --allow-destructive --allow-root \
        --continue-on-error "${req[@]}" "${targets[@]}"
}

step_functional() {
    need_setup
    if [[ ! -d $REPO/tests/functional ]]; then
        echo "no tests/functional"
        return "$NOT_PRESENT"
    fi
    # A fresh worktree has no .ansible link yet (setup makes it once per checkout).
    "$REPO/scripts/dev-link.sh" >/dev/null
    local rc=0 where=(tests/functional) a
    # Test files or node ids given: run those only, not the whole directory too.
    for a in "$@"; do
        [[ $a == tests/functional/* ]] && where=()
    done
    (
        cd "$REPO"
        export PYTHONPATH="$REPO/plugins/module_utils${PYTHONPATH:+:$PYTHONPATH}"
        PATH=$(path_for "$VENV_219") exec "$VENV_219/bin/python3" -m pytest -o cache_dir="$REPO/tests/output/.pytest_cache" \
            -p no:randomly "${where[@]}" "$@"
    ) || rc=$?
    # pytest's 5 = nothing collected: the directory is there but holds no test.
    if ((rc == 5)); then
        echo "tests/functional holds no test"
        return "$NOT_PRESENT"
    fi
    return "$rc"
}

# The tarball users get: run the demo in the checkout (both ways it can be
# run), build the collection, check that nothing generated is in it, install
# it into a fresh collections path and run the installed demo playbook from a
# scratch working directory: its output lands there, not in the collection.
step_package() {
    need_setup
    local tmp rc=0
    mkdir -p "$CACHE/tmp"
    tmp=$(mktemp -d "$CACHE/tmp/package.XXXXXX")
    (
        set -euo pipefail
        local bin="$VENV_219/bin"
        export ANSIBLE_CONFIG="$REPO/ansible.cfg"
        "$REPO/scripts/dev-link.sh" >/dev/null
        cd "$REPO"
        local py="$VENV_219/bin/python3"
        "$bin/ansible-playbook" -e "ansible_python_interpreter=$py" -e "palhm_demo_dir=$REPO/demo" playbooks/demo.yml >"$tmp/demo1.log"
        "$bin/ansible-playbook" -e "ansible_python_interpreter=$py" playbooks/demo.yml >"$tmp/demo2.log"
        [[ -d $REPO/demo/backups && -d $REPO/palhm-demo/backups ]] || { echo "the demo wrote no backups"; exit 1; }
        "$bin/ansible-galaxy" collection build --force --output-path "$tmp" "$REPO" >/dev/null
        local tarball
        tarball=$(echo "$tmp"/palhm-palhm-*.tar.gz)
        tar -tzf "$tarball" >"$tmp/contents"
        echo "$(wc -l <"$tmp/contents") entries in ${tarball##*/}"
        if grep -E '^(demo|palhm-demo|\.venv[^/]*|tests/output|\.ansible)(/|$)|__pycache__|\.pyc$' "$tmp/contents"; then
            echo "the tarball ships generated files (above)"; exit 1
        fi
        mkdir -p "$tmp/collections" "$tmp/cwd"
        cd "$tmp/cwd"
        unset ANSIBLE_CONFIG
        # --force: the checkout's dev link would count as "already installed".
        ANSIBLE_COLLECTIONS_PATH="$tmp/collections" "$bin/ansible-galaxy" collection install --force -p "$tmp/collections" "$tarball" >/dev/null
        ANSIBLE_COLLECTIONS_PATH="$tmp/collections" "$bin/ansible-playbook" -e "ansible_python_interpreter=$py" palhm.palhm.demo >"$tmp/demo3.log" || { find "$tmp/collections" -maxdepth 4; cat "$tmp/demo3.log"; exit 1; }
        [[ -d $tmp/cwd/palhm-demo/backups ]] || { echo "the installed demo did not write under its working directory"; exit 1; }
        if find "$tmp/collections" \( -name palhm-demo -o -name backups -o -name 'palhm.json' \) -print | grep .; then
            echo "the installed demo wrote into the collection (above)"; exit 1
        fi
        echo "demo output under the working directory; tarball clean"
    ) || rc=$?
    rm -rf -- "$tmp" "$REPO/demo" "$REPO/palhm-demo"
    return "$rc"
}

# The README's commands, verbatim, as a new user runs them: a fresh clone of
# the committed checkout in a temp dir, then every ```sh block that follows a
# "<!-- readme-test: run -->" line, in order, in one bash (set -euo pipefail).
# Blocks that need what this machine lacks (Galaxy, another host) carry no
# marker. Fails when the README holds fewer than two marked blocks.
step_readme() {
    need_setup
    local tmp rc=0
    mkdir -p "$CACHE/tmp"
    tmp=$(mktemp -d "$CACHE/tmp/readme.XXXXXX")
    mkdir "$tmp/home"
    (
        set -euo pipefail
        git clone -q "$REPO" "$tmp/clone"
        "$VENV_219/bin/python3" - "$tmp/clone/README.md" >"$tmp/readme.sh" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
blocks = re.findall(r"^<!-- readme-test: run -->\n```sh\n(.*?)^```$", text, re.M | re.S)
if len(blocks) < 2:
    sys.exit("README.md: expected at least 2 blocks marked <!-- readme-test: run -->, found %d" % len(blocks))
print("set -euo pipefail")
for i, b in enumerate(blocks, 1):
    print("echo '== README block %d =='" % i)
    print(b)
PY
        cd "$tmp/clone"
        # A user's shell: no test venv on PATH, no ANSIBLE_CONFIG.
        env -u ANSIBLE_CONFIG -u PYTHONPATH PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            HOME="$tmp/home" bash "$tmp/readme.sh"
        echo "README blocks ran in a fresh clone"
    ) || rc=$?
    rm -rf -- "$tmp"
    return "$rc"
}

# Run an external test script that another part of the project owns:
# step_script DIR/run.sh ARGS... A missing DIR means that part is not there
# yet (not counted); DIR without run.sh is a broken part (fails).
step_script() {
    local script=$1; shift
    local dir=${script%/*}
    if [[ ! -e $REPO/$dir ]]; then
        echo "$dir/ does not exist (yet)"
        return "$NOT_PRESENT"
    fi
    if [[ ! -f $REPO/$script ]]; then
        echo "$dir/ exists but its entry point $script does not"
        return 1
    fi
    need_setup
    PATH="$VENV_219/bin:$PATH" bash "$REPO/$script" "$@"
}

# ---------------------------------------------------------------------------
# Step runner, log files and summary
# ---------------------------------------------------------------------------
# One line per finished step (NAME|STATUS|SECONDS|RC), in a file so that steps
# run in parallel lanes (background subshells) are counted too.
RESULTS=''
STREAM=${PALHM_TEST_VERBOSE:-0}

run_step() {
    local name=$1; shift
    mkdir -p "$LOGDIR"
    local log="$LOGDIR/$name.log" rc=0 start end
    start=$(date +%s)
    say "step $name (log: ${log#"$REPO"/})"
    # The step runs in a subshell with errexit on; it must not be the left
    # side of || or bash would switch errexit off inside it.
    set +e
    if [[ $STREAM == 1 ]]; then
        (set -e; trap cleanup_layout EXIT; "$@") 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
    else
        (set -e; trap cleanup_layout EXIT; "$@") >"$log" 2>&1
        rc=$?
    fi
    set -e
    end=$(date +%s)
    local status
    case $rc in
        0) status=PASS ;;
        "$NOT_PRESENT") status='NOT PRESENT' ;;
        *) status=FAIL ;;
    esac
    printf '%s\n' "$name|$status|$((end - start))|$rc" >>"$RESULTS"
    if [[ $status == FAIL && $STREAM != 1 ]]; then
        # One tail at a time when lanes run in parallel.
        {
            flock 8
            say "step $name FAILED (exit $rc) after $((end - start)) s; last lines of $log:"
            tail -n 80 "$log" | sed 's/^/    | /' >&2
        } 8>"$LOGDIR/.print.lock"
    elif [[ $status == FAIL ]]; then
        say "step $name FAILED (exit $rc) after $((end - start)) s (log: $log)"
    else
        say "step $name: $status ($((end - start)) s)"
    fi
    return 0
}

print_summary() {
    local passed=0 failed=0 absent=0 row name status secs rc rows=()
    if [[ ! -f $RESULTS ]]; then
        printf 'run.sh: no step results in %s (removed during the run?)\n' "$RESULTS" >&2
        printf '0 passed, 1 failed\n'
        return 1
    fi
    mapfile -t rows <"$RESULTS"
    printf '\n%-28s %-12s %8s\n' STEP STATUS TIME >&2
    printf '%-28s %-12s %8s\n' ---- ------ ---- >&2
    for row in "${rows[@]}"; do
        IFS='|' read -r name status secs rc <<<"$row"
        printf '%-28s %-12s %7ss\n' "$name" "$status" "$secs" >&2
        case $status in
            PASS) passed=$((passed + 1)) ;;
            FAIL) failed=$((failed + 1)) ;;
            *) absent=$((absent + 1)) ;;
        esac
    done
    if ((absent > 0)); then
        printf '(%d step(s) NOT PRESENT: their files do not exist yet; not counted)\n' "$absent" >&2
    fi
    printf 'logs: %s\n' "${LOGDIR#"$REPO"/}" >&2
    # The closing line CI reads.
    printf '%d passed, %d failed\n' "$passed" "$failed"
    ((failed == 0))
}

sets() { local s; for s in $ANSIBLE_SETS; do printf '%s\n' "$s"; done; }

# With arguments (e.g. `--test pylint`), only the two main runs, with those
# arguments added. Without, the six runs go in two parallel lanes (pylint,
# the slow part, uses both cores only part of the time); PALHM_TEST_JOBS=1
# runs them one after another.
do_sanity() {
    local s p
    if (($# > 0)); then
        for s in $(sets); do run_step "sanity-$s" step_sanity "$s" "$@"; done
        return 0
    fi
    local lane_a=() lane_b=() i=0
    for s in $(sets); do
        if ((i++ % 2 == 0)); then lane_a+=("sanity-$s step_sanity $s"); else lane_b+=("sanity-$s step_sanity $s"); fi
    done
    for p in "${EXTRA_SANITY_PYTHONS[@]}"; do
        if ((i++ % 2 == 0)); then lane_a+=("sanity-py$p step_sanity_extra $p"); else lane_b+=("sanity-py$p step_sanity_extra $p"); fi
    done
    lane_b+=("lint step_lint")
    lane_a+=("docs step_docs")
    if [[ ${PALHM_TEST_JOBS:-2} == 1 ]]; then
        run_lane "${lane_a[@]}" "${lane_b[@]}"
        return 0
    fi
    say "sanity: two lanes in parallel; output goes to the logs only"
    local pid_a pid_b
    STREAM=0 run_lane "${lane_a[@]}" &
    pid_a=$!
    STREAM=0 run_lane "${lane_b[@]}" &
    pid_b=$!
    wait "$pid_a" || true
    wait "$pid_b" || true
}

# run_lane "NAME FUNCTION ARG..." ...: run_step for each (words split on spaces).
run_lane() {
    local spec words
    for spec in "$@"; do
        read -r -a words <<<"$spec"
        run_step "${words[@]}"
    done
}
do_units() { local s; for s in $(sets); do run_step "units-$s" step_units "$s" "$@"; done; }
do_integration() {
    local s
    for s in $(sets); do run_step "integration-$s" step_integration "$s" "$@"; done
}

usage() {
    sed -n '/^# The single entry point/,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

main() {
    local cmd=${1:-}
    mkdir -p "$LOGDIR"
    # run_step appends to it; a run started at the same time has its own.
    RESULTS="$LOGDIR/.results.$$"
    rm -f -- "$RESULTS"
    [[ $# -gt 0 ]] && shift
    case $cmd in
        setup) STREAM=1; run_step setup cmd_setup ;;
        sanity) STREAM=1; do_sanity "$@" ;;
        lint) STREAM=1; run_step lint step_lint ;;
        docs) STREAM=1; run_step docs step_docs ;;
        units) STREAM=1; do_units "$@" ;;
        integration) STREAM=1; do_integration "$@" ;;
        functional) STREAM=1; run_step functional step_functional "$@" ;;
        package) STREAM=1; run_step package step_package ;;
        readme) STREAM=1; run_step readme step_readme ;;
        fleet) STREAM=1; run_step fleet step_script tests/fleet/run.sh "$@" ;;
        reliability) STREAM=1; run_step reliability step_script tests/reliability/run.sh "$@" ;;
        bench) STREAM=1; run_step bench step_script bench/run.sh "$@" ;;
        all)
            # Fresh logs for a full run (only logs: another run's results
            # file must survive).
            find "$LOGDIR" -maxdepth 1 -type f -name '*.log' -delete
            run_step setup cmd_setup
            if grep -q '^setup|FAIL|' "$RESULTS"; then
                print_summary || true
                exit 1
            fi
            do_sanity
            do_units
            run_step functional step_functional
            run_step package step_package
            run_step readme step_readme
            do_integration
            run_step fleet step_script tests/fleet/run.sh
            PALHM_TEST_MODE=short run_step reliability step_script tests/reliability/run.sh --short
            ;;
        -h | --help | help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    local rc=0
    print_summary || rc=$?
    rm -f -- "$RESULTS"
    exit "$rc"
}

# main always exits (never returns): bash reads a script as it runs, and an
# edit to this file during a long run must not make the shell read on.
main "$@"
