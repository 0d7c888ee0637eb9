# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""migration: configs written for the original PALHM load and run as it
documents, and what cannot be a config is refused before anything runs.

(1) the original-style sample of tests/functional/files/original_sample
(palhm.conf -> site.JSONC, a symlinked conf.d, an include through a symlinked
file, a prefix object, comment keys, "./" and "//" paths): `palhm config`
names the real-directory include and the included scalars win; `palhm run ""`
makes one complete copy at the normalised paths. (2) a key repeated in one
object, at a random place of a valid config: exit 2 naming the key's JSON
path. (3) an include that is a FIFO, /dev/zero, a directory or a 17 MiB file:
exit 2 at once, naming the including file and include[0]."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time

from lib import REPO, Palhm, Result

SAMPLE = REPO / "tests" / "functional" / "files" / "original_sample"


def _limited():
    # A planted defect may read /dev/zero without a bound: never let it eat the host's memory.
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def _run(p, *args, config=None, timeout=60):
    return subprocess.run(p.argv(*args, config=config), env=p.env, cwd=str(p.workdir), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout, check=False, preexec_fn=_limited)


def check_sample(ctx, res):
    p = Palhm(ctx, ctx.tmp / "migration-sample")
    base = p.workdir / "sample"
    shutil.copytree(SAMPLE, base, symlinks=True)
    root, src = p.workdir / "root", p.workdir / "src"
    src.mkdir()
    (src / "a.txt").write_text("a\n")
    for d, dummy, files in os.walk(base):
        for f in files:
            path = os.path.join(d, f)
            if not os.path.islink(path):
                with open(path) as fh:
                    text = fh.read().replace("@ROOT@", str(root)).replace("@SRC@", str(src))
                with open(path, "w") as fh:
                    fh.write(text)
    conf = base / "etc" / "palhm.conf"
    probs = []
    r = _run(p, "config", config=conf)
    if r.returncode != 0:
        probs.append("palhm config of the original sample: exit %d: %s" % (r.returncode, r.stderr.strip()[-300:]))
    else:
        cfg = json.loads(r.stdout)
        want = str(base / "shared" / "lib" / "tuning.jsonc")
        if cfg["files"][-1:] != [want]:
            probs.append("the include of a symlinked core.json resolved to %s, want %s" % (cfg["files"][-1:], want))
        if (cfg["vl"], cfg["nb-workers"]) != (3, 2):
            probs.append("vl, nb-workers = %r, want the included file's (3, 2)" % ((cfg["vl"], cfg["nb-workers"]),))
        warns = [w for w in r.stderr.splitlines() if "warning:" in w]
        if len(warns) != 1 or "backend-param.prefix" not in warns[0]:
            probs.append("want one warning naming backend-param.prefix, got %r" % warns)
    res.record(probs)
    probs = []
    r = _run(p, "-q", "run", "", config=conf, timeout=300)
    if r.returncode != 0:
        probs.append("palhm run \"\" of the original sample: exit %d: %s" % (r.returncode, r.stderr.strip()[-300:]))
    else:
        copies = [c for c in os.listdir(root) if not c.startswith(".")]
        for rel in ("os-release", "meta/uname.zstd", "src.tar.zstd"):
            if len(copies) != 1 or not os.path.isfile(os.path.join(root, copies[0], rel)):
                probs.append("object %s is not at ROOT/PREFIX/%s (copies: %s)" % (rel, rel, copies))
    res.record(probs)


def _objects_of(node, path=""):
    """(JSON path, object) for every object of `node`."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _objects_of(v, "%s.%s" % (path, k) if path else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _objects_of(v, "%s[%d]" % (path, i))


def check_duplicate_keys(ctx, res, runs):
    p = Palhm(ctx, ctx.tmp / "migration-dupkeys")
    doc = {"vl": 3, "execs": [{"id": "z", "argv": ["zstd"], "env": {"A": "1"}}],
           "tasks": [{"id": "backup", "type": "backup", "backend": "localfs",
                      "backend-param": {"root": str(p.workdir / "root"), "nb-copy-limit": 2},
                      "object-groups": [{"id": "g"}],
                      "objects": [{"path": "a", "group": "g", "pipeline": [
                          {"type": "exec-inline", "argv": ["echo", "a"]}, {"type": "exec", "exec-id": "z"}]}]}]}
    targets = [(path, o) for path, o in _objects_of(doc) if o]
    for dummy in range(runs):
        path, o = targets[ctx.rng.randrange(len(targets))]
        key = ctx.rng.choice(sorted(o))
        body = json.dumps(o)[1:-1]
        # The same key again, with a different value, at the end of the object.
        text = json.dumps(doc).replace("{" + body + "}", "{" + body + ", %s: %s}" % (json.dumps(key), json.dumps("x")), 1)
        conf = p.workdir / "palhm.conf"
        conf.write_text(text)
        r = _run(p, "config", config=conf)
        want = "palhm: %s: %s: duplicate key" % (conf, "%s.%s" % (path, key) if path else key)
        probs = []
        if r.returncode != 2 or not r.stderr.startswith(want) or "Traceback" in r.stderr:
            probs.append("key %r repeated at %s: exit %d, %r (want exit 2, %r)"
                         % (key, path or "(top)", r.returncode, r.stderr.strip()[-200:], want))
        res.record(probs)


def check_bad_includes(ctx, res):
    p = Palhm(ctx, ctx.tmp / "migration-includes")
    for what in ("fifo", "dev-zero", "directory", "huge"):
        target = p.workdir / ("inc-" + what)
        if what == "fifo":
            os.mkfifo(target)
        elif what == "dev-zero":
            target.symlink_to("/dev/zero")
        elif what == "directory":
            target.mkdir()
        else:
            with open(target, "w") as f:
                f.write("{}")
                f.truncate(17 << 20)
        conf = p.write_config({"include": [str(target)]}, name="inc-%s.conf" % what)
        t0 = time.monotonic()
        probs = []
        try:
            r = _run(p, "config", config=conf, timeout=30)
        except subprocess.TimeoutExpired:
            res.record(["include of a %s: palhm config hung (killed after 30 s)" % what])
            continue
        took = time.monotonic() - t0
        want = "palhm: %s: include[0]: %s: %s" % (conf, target, "too large" if what == "huge" else
                                                  "not a regular file")
        if r.returncode != 2 or not r.stderr.startswith(want) or took > 20:
            probs.append("include of a %s: exit %d after %.1fs, %r (want exit 2 at once, %r)"
                         % (what, r.returncode, took, r.stderr.strip()[-200:], want))
        res.record(probs)


def migration(ctx, rounds):
    res = Result("migration (original configs, dup keys, includes)")
    check_sample(ctx, res)
    check_duplicate_keys(ctx, res, rounds)
    check_bad_includes(ctx, res)
    return res
