# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Safety: object paths that try to leave the copy, symlinks inside the
backup root that point outside it, file modes under hostile umasks, and
secrets that must never show. Each check below is one run of the table."""

from __future__ import annotations

import json
import os
import subprocess

from lib import PY, REPO, Obj, Palhm, Result, sha_file

SECRET_S3 = "S3CRET-safety-s3-77c1e0"
SECRET_SMTP = "S3CRET-safety-smtp-41af9b"

BAD_PATHS = ["..", "../escape", "a/../../escape", "a/..", "/abs", "/etc/passwd", "a/", ".", "./", "./..",
             ".palhm-manifest.json", ".palhm-x", "./.palhm-x", "x.palhm-partial", ""]
# "./top", "c//d" and "e/./f" are normalised (to top, c/d, e/f) as the original's cp made them.
ODD_OK_PATHS = ["a\\..\\b", "...", " ..", "..a", "a..", "-rf", "sub/dir/deep.bin", "\u2025", "x y/z",
                "./top", "c//d", "e/./f"]


def snapshot(top, skip=None):
    """Every path under `top` (not following symlinks, not under `skip`) -> (type, mode, content hash)."""
    out = {}
    for d, dirs, files in os.walk(top, followlinks=False):
        if skip is not None:
            dirs[:] = [n for n in dirs if os.path.join(d, n) != str(skip)]
        for name in dirs + files:
            p = os.path.join(d, name)
            st = os.lstat(p)
            if os.path.islink(p):
                out[p] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[p] = ("dir", st.st_mode)
            else:
                out[p] = ("file", st.st_mode, sha_file(p))
    return out


def _backup(p, root, objs, **param):
    bp = {"root": str(root)}
    bp.update(param)
    return {"id": "backup", "type": "backup", "backend": "localfs", "backend-param": bp,
            "objects": [o if isinstance(o, dict) else o.config(p.marker) for o in objs]}


def check_paths(ctx, res):
    p = Palhm(ctx, ctx.tmp / "safety-paths")
    sandbox = p.workdir / "sandbox"
    root, outside = sandbox / "root", sandbox / "outside"
    outside.mkdir(parents=True)
    (outside / "keep.txt").write_text("outside the backup root\n")
    before = snapshot(sandbox, skip=root)
    # Every bad path, validated by the engine under test in one process.
    code = ("import json, sys\nfrom palhm import config\nfrom palhm.errors import ConfigError\nout = {}\n"
            "for bad in json.loads(sys.argv[1]):\n"
            "    doc = {'tasks': [{'id': 'b', 'type': 'backup', 'backend': 'localfs', 'backend-param': "
            "{'root': '/tmp/x'}, 'objects': [{'path': bad, 'pipeline': [{'type': 'exec-inline', "
            "'argv': ['true']}]}]}]}\n"
            "    try:\n        config.from_dict(doc)\n        out[bad] = 'accepted'\n"
            "    except ConfigError as e:\n        out[bad] = str(e)\n"
            "print(json.dumps(out))\n")
    r = subprocess.run([PY, "-c", code, json.dumps(BAD_PATHS)], env=p.env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    verdicts = json.loads(r.stdout) if r.returncode == 0 else {}
    for bad in BAD_PATHS:
        msg = verdicts.get(bad, "worker failed: %s" % r.stderr[-200:])
        res.record([] if msg.startswith("tasks[0].objects[0].path: ") else
                   ["object path %r: %s (want a config error at tasks[0].objects[0].path)" % (bad, msg)])
    # Escapes end to end, through the command: refused, and nothing written outside.
    for bad in ["a/../../../outside/pwned", "../../outside/pwned", "x/../../../../sandbox/outside/pwned",
                str(outside / "pwned")]:
        probs = []
        obj = Obj("placeholder", 1000, seed=5).config(p.marker)
        obj["path"] = bad
        p.write_config({"tasks": [_backup(p, root, [obj])]})
        r = p.run("-q", "run", "backup")
        if r.returncode != 2 or "objects[0].path" not in r.stderr:
            probs.append("object path %r: exit %d, %r (want exit 2 naming objects[0].path)"
                         % (bad, r.returncode, r.stderr.strip()[-200:]))
        after = snapshot(sandbox, skip=root)
        if after != before:
            probs.append("object path %r wrote outside the backup root: %s"
                         % (bad, sorted(set(after) ^ set(before))[:3]))
        res.record(probs)
    # Odd but legal names stay inside the copy.
    probs = []
    objs = [Obj(path, 100 + i, seed=i) for i, path in enumerate(ODD_OK_PATHS)]
    p.write_config({"tasks": [_backup(p, root, objs)]})
    r = p.run("-q", "run", "backup")
    if r.returncode != 0:
        probs.append("odd legal paths: exit %d: %s" % (r.returncode, r.stderr[-300:]))
    else:
        copies = [c for c in os.listdir(root) if not c.startswith(".")]
        for o in objs:
            f = os.path.join(root, copies[0], o.path)
            if not os.path.isfile(f) or sha_file(f) != o.sha:
                probs.append("object %r is not at ROOT/PREFIX/%s" % (o.path, o.path))
    if snapshot(sandbox, skip=root) != before:
        probs.append("odd legal paths wrote outside the backup root")
    res.record(probs)


def check_symlinks(ctx, res, runs):
    p = Palhm(ctx, ctx.tmp / "safety-symlinks")
    root, outside = p.workdir / "root", p.workdir / "outside"
    objs = [Obj("data.bin", 50000, seed=3), Obj("d/e.bin", 2000, seed=4)]
    p.write_config({"tasks": [_backup(p, root, objs, **{"nb-copy-limit": 1})]})
    for name in ("fakecopy", "leftover", "deleting", "victim-dir", "victim2"):
        (outside / name).mkdir(parents=True)
        (outside / name / "precious.txt").write_text("must survive: %s\n" % name)
    (outside / "fakecopy" / ".palhm-manifest.json").write_text(json.dumps({"objects": []}))
    (outside / "victim-file").write_text("must survive\n")
    (outside / "manifest.json").write_text(json.dumps({"objects": []}))
    r = p.run("-q", "run", "backup")
    if r.returncode != 0:
        raise RuntimeError("first run failed: %s" % r.stderr)
    real = sorted(os.listdir(root))[0]
    # Traps: top-level links that look like copies, leftovers or copies being deleted;
    # links inside a real copy and inside a real leftover; a manifest that is a link.
    os.symlink(outside / "fakecopy", root / "2000-01-01T00:00:00+00:00")
    os.symlink(outside / "leftover", root / "1999-01-01T00:00:00+00:00.palhm-partial")
    os.symlink(outside / "deleting", root / "2001-01-01T00:00:00+00:00.palhm-deleting")
    os.symlink(outside / "victim-dir", root / real / "evil-dir")
    os.symlink(outside / "victim-file", root / real / "evil-file")
    (root / "2002-01-01T00:00:00+00:00.palhm-partial").mkdir()
    os.symlink(outside / "victim2", root / "2002-01-01T00:00:00+00:00.palhm-partial" / "link")
    os.symlink(outside / "victim-file", root / "2002-01-01T00:00:00+00:00.palhm-partial" / "file-link")
    (root / "2003-01-01T00:00:00+00:00").mkdir()
    os.symlink(outside / "manifest.json", root / "2003-01-01T00:00:00+00:00" / ".palhm-manifest.json")
    os.symlink(outside / "victim-dir", root / "2003-01-01T00:00:00+00:00" / "evil")
    before = snapshot(outside)
    for i in range(runs):
        probs = []
        r = p.run("-q", "run", "backup")
        if r.returncode != 0:
            probs.append("run %d beside the symlinks: exit %d: %s" % (i, r.returncode, r.stderr[-300:]))
        after = snapshot(outside)
        if after != before:
            gone = sorted(set(before) - set(after))
            changed = sorted(k for k in before if k in after and before[k] != after[k])
            probs.append("outside the root: removed %s, changed %s, added %s"
                         % (gone, changed, sorted(set(after) - set(before))))
        res.record(probs)
    res.notes["symlink_traps"] = 9


def check_modes(ctx, res):
    for umask in (0o077, 0o000):
        for modes in ({"fmode": "604", "dmode": "715"}, {}):
            probs = []
            p = Palhm(ctx, ctx.tmp / ("safety-modes-%03o-%d" % (umask, len(modes))))
            root = p.workdir / "root" / "nested"
            p.write_config({"tasks": [_backup(p, root, [Obj("top.bin", 1000, seed=1),
                                                        Obj("d1/d2/f.bin", 3000, seed=2)], **modes)]})
            r = p.run("-q", "run", "backup", umask=umask)
            fmode = int(modes.get("fmode", "640"), 8)
            dmode = int(modes.get("dmode", "750"), 8)
            if r.returncode != 0:
                probs.append("umask %03o: exit %d: %s" % (umask, r.returncode, r.stderr[-300:]))
            else:
                def check(path, want):
                    got = os.lstat(path).st_mode & 0o7777
                    if got != want:
                        probs.append("umask %03o %s: %s has mode %03o, want %03o"
                                     % (umask, modes or "defaults", os.path.relpath(path, p.workdir), got, want))
                check(root, dmode)
                for d, dirs, files in os.walk(root):
                    for n in dirs:
                        check(os.path.join(d, n), dmode)
                    for n in files:
                        check(os.path.join(d, n), fmode)
            res.record(probs)


MODULE_RUNNER = r"""
import io, json, sys
sys.path.insert(0, sys.argv[1])
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes
basic._ANSIBLE_ARGS = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": json.loads(sys.argv[2])}))
basic._ANSIBLE_PROFILE = "legacy"
from ansible_collections.palhm.palhm.plugins.modules import palhm_backup
try:
    palhm_backup.main()
except SystemExit:
    pass
"""


def check_secrets(ctx, res):
    moto = ctx.moto_url()
    from lib import s3_client
    p = Palhm(ctx, ctx.tmp / "safety-secrets")
    bucket = "rel-" + p.workdir.name
    s3_client(moto).create_bucket(Bucket=bucket)
    obj = Obj("o.bin", 1000, seed=9).config(p.marker)
    s3_param = {"bucket": bucket, "root": "/h", "endpoint-url": moto, "region": "us-east-1",
                "access-key": "AKIASAFETY", "secret-key": SECRET_S3}
    smtp = {"mua": "smtp", "mail-to": ["root@localhost"],
            "mua-param": {"host": "127.0.0.1", "port": 1, "tls": "starttls", "username": "u",
                          "password": SECRET_SMTP, "timeout": 2}}

    def doc(param, br=None):
        if br is None:
            br = smtp
        return {"modules": ["aws"], "boot-report": br,
                "tasks": [{"id": "s3", "type": "backup", "backend": "aws-s3", "backend-param": param,
                           "objects": [obj]}]}

    cases = [("palhm config", doc(s3_param), ["config"]),
             ("palhm -v run (succeeds)", doc(s3_param), ["-v", "run", "s3"]),
             ("palhm -v run (no such bucket)", doc(dict(s3_param, bucket="rel-missing")), ["-v", "run", "s3"]),
             ("palhm -v run (unreachable endpoint)",
              doc(dict(s3_param, **{"endpoint-url": "http://127.0.0.1:1"})), ["-v", "run", "s3"]),
             ("palhm list (no such bucket)", doc(dict(s3_param, bucket="rel-missing")), ["list", "s3"]),
             ("config error: secret without access key",
              doc({k: v for k, v in s3_param.items() if k != "access-key"}), ["config"]),
             ("config error: unknown key beside the secret", doc(dict(s3_param, bogus=1)), ["config"]),
             ("config error: bad bucket beside the secret", doc(dict(s3_param, bucket="a/b")), ["config"]),
             ("config error: password over plain SMTP",
              doc(s3_param, dict(smtp, **{"mua-param": dict(smtp["mua-param"], tls="none")})), ["config"]),
             ("palhm -v boot-report (SMTP unreachable)", doc(s3_param), ["-v", "boot-report"])]
    for what, d, args in cases:
        p.write_config(d)
        r = p.run(*args, timeout=300)
        probs = []
        for secret in (SECRET_S3, SECRET_SMTP):
            if secret in r.stdout or secret in r.stderr:
                probs.append("%s: a secret shows in the output (exit %d)" % (what, r.returncode))
        res.record(probs)
    # Module results: the real palhm_backup module, as Ansible runs it.
    coll = REPO / ".ansible" / "collections"
    subprocess.run([str(REPO / "scripts" / "dev-link.sh")], stdout=subprocess.DEVNULL, check=False)
    env = dict(p.env)
    env["PYTHONPATH"] = str(coll)
    for what, args in (
            ("palhm_backup result (succeeds)",
             {"task": "s3", "backend": "aws-s3", "backend_param": s3_param, "objects": [obj]}),
            ("palhm_backup result (fails)",
             {"task": "s3", "backend": "aws-s3", "backend_param": dict(s3_param, bucket="rel-missing"),
              "objects": [obj]}),
            ("palhm_backup result (config error)",
             {"task": "s3", "backend": "aws-s3", "backend_param": dict(s3_param, bogus=1), "objects": [obj]})):
        r = subprocess.run([PY, "-c", MODULE_RUNNER, str(coll), json.dumps(args)], env=env, cwd=str(p.workdir),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300, check=False)
        probs = []
        try:
            result = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            probs.append("%s: no JSON result: %s %s" % (what, r.stdout[-300:], r.stderr[-500:]))
            result = {}
        if SECRET_S3 in r.stdout or SECRET_S3 in r.stderr:
            where = [k for k in result if SECRET_S3 in json.dumps(result.get(k))]
            probs.append("%s: the S3 secret key shows in the module result (in %s)" % (what, where))
        res.record(probs)


def safety(ctx, rounds):
    res = Result("safety (paths, symlinks, modes, secrets)")
    check_paths(ctx, res)
    check_symlinks(ctx, res, 2 * rounds + 1)
    check_modes(ctx, res)
    check_secrets(ctx, res)
    return res
