#!/usr/bin/env python
"""Benchmark: palhm against the plain shell pipeline it replaces.

    python3 bench/backup_bench.py [--size-mib 1024] [--rounds 5]

Measured in the same run, on the same input (a file of mixed compressible data
in the page cache):
  * shell:         cat FILE | zstd -1 > OUT                      (sh -c, the baseline)
  * shell+sha256:  cat FILE | zstd -1 | tee OUT | sha256sum      (the same, hashed: coreutils)
  * shell+openssl: cat FILE | zstd -1 | tee OUT | openssl dgst -sha256   (hashed at OpenSSL speed)
  * cli:           palhm run  (same pipeline, localfs backend, manifest + SHA-256)
  * module:        ansible localhost -m palhm.palhm.palhm_backup (when ansible is on PATH)
It prints the median wall time and CPU time (user+sys of everything) of each,
the ratios against the plain shell pipeline and against shell+openssl (what
palhm does: store and hash), palhm's own peak RSS for several object sizes (it
must not grow with the size), and the speed-up of 4 independent objects with
nb-workers 2 over nb-workers 1.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINE = os.path.join(REPO, "plugins", "module_utils")
# Runs the palhm CLI in-process and reports the palhm process's own peak RSS
# (children's memory is not palhm's).
RSS_WRAPPER = ("import resource, sys; sys.path.insert(0, %r); from palhm.cli import main; rc = main(sys.argv[1:]); "
               "sys.stderr.write('PEAK_RSS_KIB=%%d\\n' %% resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); "
               "sys.exit(rc)" % ENGINE)


def make_input(path, size_mib):
    """Mixed data: text-like and random blocks, ~3:1 compressible with zstd -1."""
    block = os.urandom(1 << 20)
    text = (b"".join(b"%08d the quick brown fox jumps over the lazy dog\n" % i for i in range(20000)))[:1 << 20]
    with open(path, "wb") as f:
        for i in range(size_mib):
            f.write(block if i % 4 == 0 else text)
    subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)  # warm the page cache


def timed(argv, env=None):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit("bench: %s failed (%d): %s" % (argv[:3], proc.returncode, proc.stderr.decode()[-2000:]))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rss = None
    for line in proc.stderr.decode().splitlines():
        if line.startswith("PEAK_RSS_KIB="):
            rss = int(line.split("=")[1])
    return wall, cpu, rss


def config(path, root, objects, workers=1):
    doc = {"nb-workers": workers, "tasks": [{
        "id": "bench", "type": "backup", "backend": "localfs",
        "backend-param": {"root": root, "nb-copy-limit": 1},
        "objects": [{"path": name, "pipeline": [
            {"type": "exec-inline", "argv": ["cat", src]},
            {"type": "exec-inline", "argv": ["zstd", "-1", "-q", "-T1"]}]} for name, src in objects]}]}
    with open(path, "w") as f:
        json.dump(doc, f)


def median(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--no-module", action="store_true", help="skip the palhm_backup module row")
    ap.add_argument("--no-workers", action="store_true", help="skip the nb-workers speed-up")
    args = ap.parse_args()
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="palhm-bench-", dir=args.workdir)
    env = dict(os.environ, PALHM_RUN_DIR=os.path.join(work, "run"),
               # Compiled once, as on a host (the test environment may say
               # PYTHONDONTWRITEBYTECODE; recompiling the engine at every run
               # is not palhm's cost).
               PYTHONPYCACHEPREFIX=os.path.join(work, "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        src = os.path.join(work, "input.bin")
        make_input(src, args.size_mib)
        root = os.path.join(work, "root")
        conf = os.path.join(work, "palhm.json")
        config(conf, root, [("data.zst", src)])
        py = sys.executable
        out = os.path.join(work, "shell.zst")
        shells = {
            "shell": ["sh", "-c", 'cat "$1" | zstd -1 -q -T1 > "$2"', "sh", src, out],
            "shell+sha256": ["sh", "-c", 'cat "$1" | zstd -1 -q -T1 | tee "$2" | sha256sum', "sh", src, out],
            "shell+openssl": ["sh", "-c", 'cat "$1" | zstd -1 -q -T1 | tee "$2" | openssl dgst -sha256', "sh",
                              src, out],
        }
        cli = [py, "-c", RSS_WRAPPER, "-q", "-f", conf, "run", "bench"]
        ansible = None if args.no_module else shutil.which("ansible")
        module = None
        if ansible:
            margs = json.dumps({"config": conf, "task": "bench"})
            module = [ansible, "localhost", "-m", "palhm.palhm.palhm_backup", "-a", margs,
                      "-e", "ansible_python_interpreter=" + py]
        timed(cli, env)  # warm-up: bytecode compiled, page cache as in the rounds
        names = list(shells) + ["cli", "module"]
        results = {name: [] for name in names}
        for _round in range(args.rounds):
            # Interleaved so drift of a noisy machine hits all alike.
            for name, argv in shells.items():
                results[name].append(timed(argv, env))
            results["cli"].append(timed(cli, env))
            if module:
                results["module"].append(timed(module, env))
        med = {name: (median([x[0] for x in results[name]]), median([x[1] for x in results[name]]))
               for name in names if results[name]}
        base_wall, base_cpu = med["shell"]
        hashed_wall, hashed_cpu = med["shell+openssl"]
        print("backup of %d MiB through `cat | zstd -1`, %d rounds, medians; load average %s:"
              % (args.size_mib, args.rounds, " ".join("%.2f" % x for x in os.getloadavg())))
        head = ("how", "wall s", "cpu s", "wall ratio", "cpu ratio", "cpu vs +openssl")
        print("%-14s %9s %9s %11s %10s %17s" % head)
        for name in names:
            if name not in med:
                continue
            w, c = med[name]
            row = (name, w, c, w / base_wall, c / base_cpu, c / hashed_cpu)
            print("%-14s %9.3f %9.3f %11.3f %10.3f %17.3f" % row)
        print("(ratios: against `shell`; last column: CPU against `shell+openssl`, %.3f s wall)" % hashed_wall)

        print("\npalhm peak RSS by object size (palhm process only):")
        for mib in (64, 256, args.size_mib):
            small = os.path.join(work, "in-%d.bin" % mib)
            make_input(small, mib)
            config(conf, root, [("data.zst", small)])
            rss = timed([py, "-c", RSS_WRAPPER, "-q", "-f", conf, "run", "bench"], env)[2]
            print("  %5d MiB object: %6.1f MiB" % (mib, rss / 1024.0))
            os.unlink(small)

        if args.no_workers:
            return
        quarter = max(64, args.size_mib // 4)
        srcs = []
        for i in range(4):
            p = os.path.join(work, "obj%d.bin" % i)
            make_input(p, quarter)
            srcs.append(("obj%d.zst" % i, p))
        walls = {}
        for workers in (1, 2):
            config(conf, root, srcs, workers)
            walls[workers] = median([timed(cli, env)[0] for _round in range(max(1, args.rounds // 2))])
        print("\n4 independent objects of %d MiB: nb-workers 1 %.3f s, nb-workers 2 %.3f s, speed-up %.2fx"
              % (quarter, walls[1], walls[2], walls[1] / walls[2]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
