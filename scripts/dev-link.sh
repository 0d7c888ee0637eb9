#!/usr/bin/env bash
# Make the repo importable as the collection palhm.palhm from its own
# ansible.cfg: .ansible/collections/ansible_collections/palhm/palhm -> repo root.
# Idempotent; safe to run from any directory and as often as you like.
# Prints the collections dir to put in ANSIBLE_COLLECTIONS_PATH.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
ns_dir="$repo/.ansible/collections/ansible_collections/palhm"
link="$ns_dir/palhm"
# Relative, so the link survives moving or re-cloning the repo.
target="../../../.."

mkdir -p "$ns_dir"
if [[ -L $link ]]; then
    if [[ $(cd "$link" 2>/dev/null && pwd -P) == "$repo" ]]; then
        printf '%s\n' "$repo/.ansible/collections"
        exit 0
    fi
    rm -f -- "$link"
elif [[ -e $link ]]; then
    # .ansible/ is a cache (ansible-lint also writes there): a real directory
    # here is a stale install of the collection that would shadow the repo.
    printf 'dev-link.sh: replacing stale %s with a link to the repo\n' "$link" >&2
    rm -rf -- "$link"
fi
ln -s "$target" "$link.tmp.$$"
mv -T "$link.tmp.$$" "$link"
printf '%s\n' "$repo/.ansible/collections"
