# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A DNSSEC test lab on 127.0.0.1: zones signed now, served by Unbound.

Used by the palhm_dnssec_check integration target and tests/functional.

    python3 dnssec_lab.py start DIR   sign the zones, start the resolvers, print lab.json
    python3 dnssec_lab.py stop DIR    stop the resolvers this lab started (by pid)

Zones (all under ``test.``, signed at start time so nothing in the repository
ever expires):

    valid.test.      signed, 30 days of signatures left        -> secure
    near.test.       signed, signatures expire in 2 days       -> secure, 2 days left
    tampered.test.   signed, then SOA and www A changed        -> bogus, EDE 6
    expired.test.    signatures expired 5 days ago          -> bogus, EDE 7
    unsigned.test.   not signed, no trust anchor               -> insecure

Resolvers (each an Unbound of its own, ports picked free at start):

    validating       validator + iterator, trust anchors for the signed zones
    nonvalidating    iterator only: answers everything, never sets AD
    blackhole        drops every query (access-control deny): a dead resolver
                     that makes the client wait for its timeout

Needs: unbound (Debian package), dnspython and cryptography.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

ZONES = ("valid", "near", "tampered", "expired", "unsigned")
SIGNED = ("valid", "near", "tampered", "expired")
RESOLVERS = ("validating", "nonvalidating", "blackhole")
DAY = 86400


def _unbound_bin():
    for cand in (shutil.which("unbound"), "/usr/sbin/unbound"):
        if cand and os.access(cand, os.X_OK):
            return cand
    raise RuntimeError("unbound is not installed (Debian package 'unbound')")


def _free_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _attempt in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port found")


def _zone_text(origin, serial):
    return "\n".join([
        "$ORIGIN %s" % origin,
        "$TTL 300",
        "@ IN SOA ns1 hostmaster %d 3600 600 86400 300" % serial,
        "@ IN NS ns1",
        "ns1 IN A 192.0.2.1",
        "www IN A 192.0.2.10",
        "@ IN TXT \"palhm dnssec lab %s\"" % origin,
        "",
    ])


def _sign(zone_name, text, inception, expiration):
    """Sign zone text with a fresh ECDSA P-256 KSK; return (zone, DS text)."""
    import dns.dnssec
    import dns.zone
    from cryptography.hazmat.primitives.asymmetric import ec

    zone = dns.zone.from_text(text, origin=zone_name, relativize=False)
    key = ec.generate_private_key(ec.SECP256R1())
    dnskey = dns.dnssec.make_dnskey(key.public_key(), "ECDSAP256SHA256", flags=257)
    dns.dnssec.sign_zone(zone, keys=[(key, dnskey)], inception=inception, expiration=expiration)
    ds = dns.dnssec.make_ds(zone_name, dnskey, "SHA256")
    return zone, "%s 300 IN DS %s" % (zone_name, ds.to_text())


def _tamper(zone):
    """Change signed data without re-signing: the SOA serial and www's address."""
    import dns.name
    import dns.rdata
    import dns.rdataset
    import dns.rdataclass
    import dns.rdatatype

    with zone.writer() as txn:
        origin = zone.origin
        soa = txn.get(origin, "SOA")
        new_soa = soa[0].replace(serial=soa[0].serial + 1)
        txn.replace(origin, dns.rdataset.from_rdata(soa.ttl, new_soa))
        www = dns.name.from_text("www", origin)
        a = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.A, "192.0.2.66")
        txn.replace(www, dns.rdataset.from_rdata(300, a))


def build_zones(workdir, now=None):
    """Write the zone files and the trust anchor file; return the anchors."""
    import dns.name
    import dns.zone

    now = time.time() if now is None else now
    anchors = []
    for label in ZONES:
        origin = "%s.test." % label
        text = _zone_text(origin, int(now))
        path = os.path.join(workdir, "%s.zone" % label)
        if label not in SIGNED:
            with open(path, "w") as f:
                f.write(text)
            continue
        if label == "expired":
            # Well past Unbound's clock skew allowance (10% of the validity, at most 1 day).
            inception, expiration = now - 30 * DAY, now - 5 * DAY
        elif label == "near":
            inception, expiration = now - 3600, now + 2 * DAY
        else:
            inception, expiration = now - 3600, now + 30 * DAY
        zone, ds = _sign(dns.name.from_text(origin), text, int(inception), int(expiration))
        if label == "tampered":
            _tamper(zone)
        zone.to_file(path, relativize=False, sorted=True)
        anchors.append(ds)
    with open(os.path.join(workdir, "anchors.key"), "w") as f:
        f.write("\n".join(anchors) + "\n")
    return anchors


def _unbound_conf(workdir, name, port, kind):
    lines = [
        "server:",
        "  verbosity: 1",
        "  interface: 127.0.0.1",
        "  port: %d" % port,
        "  do-ip6: no",
        "  do-daemonize: no",
        "  use-syslog: no",
        "  logfile: \"%s\"" % os.path.join(workdir, "%s.log" % name),
        "  log-servfail: yes",
        "  username: \"\"",
        "  chroot: \"\"",
        "  directory: \"%s\"" % workdir,
        "  pidfile: \"%s\"" % os.path.join(workdir, "%s.pid" % name),
        "  do-not-query-localhost: no",
        "  local-zone: \"test.\" nodefault",
        "  ede: yes",
        "  val-log-level: 2",
        "  num-threads: 1",
        "  msg-cache-size: 4m",
        "  rrset-cache-size: 4m",
        "  key-cache-size: 4m",
        "  neg-cache-size: 1m",
        "  infra-cache-numhosts: 100",
        "  outgoing-range: 64",
        "  num-queries-per-thread: 32",
        "  so-rcvbuf: 0",
        "  so-sndbuf: 0",
        "  minimal-responses: no",
        "  qname-minimisation: no",
    ]
    if kind == "validating":
        lines += [
            "  module-config: \"validator iterator\"",
            "  trust-anchor-file: \"%s\"" % os.path.join(workdir, "anchors.key"),
            "  val-bogus-ttl: 0",
            "  access-control: 127.0.0.0/8 allow",
        ]
    elif kind == "nonvalidating":
        lines += [
            "  module-config: \"iterator\"",
            "  access-control: 127.0.0.0/8 allow",
        ]
    else:  # blackhole: drop everything without an answer
        lines += [
            "  module-config: \"iterator\"",
            "  access-control: 0.0.0.0/0 deny",
            "  access-control: 127.0.0.0/8 deny",
        ]
    lines += ["remote-control:", "  control-enable: no"]
    for label in ZONES:
        lines += [
            "auth-zone:",
            "  name: \"%s.test.\"" % label,
            "  zonefile: \"%s\"" % os.path.join(workdir, "%s.zone" % label),
            "  for-upstream: yes",
            "  for-downstream: no",
            "  fallback-enabled: no",
        ]
    return "\n".join(lines) + "\n"


def _answers(port, timeout=0.3):
    """True when something on 127.0.0.1:port answers a DNS query."""
    import dns.message
    import dns.query

    q = dns.message.make_query("valid.test.", "SOA")
    try:
        dns.query.udp(q, "127.0.0.1", port=port, timeout=timeout)
        return True
    except Exception:
        return False


def _tcp_listening(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Lab:
    """The zones and the three resolvers, in `workdir`."""

    def __init__(self, workdir):
        self.workdir = os.path.abspath(workdir)
        self.state_path = os.path.join(self.workdir, "lab.json")
        self.state = None

    def start(self, wait=10.0):
        os.makedirs(self.workdir, exist_ok=True)
        self.stop()  # a previous lab in the same dir
        unbound = _unbound_bin()
        now = time.time()
        build_zones(self.workdir, now)
        state = {"workdir": self.workdir, "started": now, "host": "127.0.0.1",
                 "zones": {z: "%s.test." % z for z in ZONES}, "resolvers": {}, "pids": {}}
        for name in RESOLVERS:
            port = _free_port()
            conf = os.path.join(self.workdir, "%s.conf" % name)
            with open(conf, "w") as f:
                f.write(_unbound_conf(self.workdir, name, port, name))
            check = subprocess.run([unbound + "-checkconf", conf], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, universal_newlines=True, check=False)
            if check.returncode != 0:
                raise RuntimeError("unbound-checkconf %s: %s" % (conf, check.stdout.strip()))
            log = open(os.path.join(self.workdir, "%s.stderr" % name), "wb")
            proc = subprocess.Popen([unbound, "-d", "-c", conf], stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            state["resolvers"][name] = port
            state["pids"][name] = proc.pid
            self._save(state)
        deadline = time.time() + wait
        for name, port in state["resolvers"].items():
            while True:
                up = _tcp_listening(port) if name == "blackhole" else _answers(port)
                if up:
                    break
                if time.time() > deadline:
                    self.stop()
                    raise RuntimeError("unbound %s did not come up on port %d; see %s"
                                       % (name, port, os.path.join(self.workdir, name + ".log")))
                time.sleep(0.05)
        self.state = state
        return state

    def _save(self, state):
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f, indent=2, sort_keys=True)
        os.replace(tmp, self.state_path)

    def stop(self):
        """Stop the resolvers recorded in lab.json (only those; by pid)."""
        try:
            with open(self.state_path) as f:
                state = json.load(f)
        except (OSError, ValueError):
            return
        for name, pid in state.get("pids", {}).items():
            if not _is_our_unbound(pid, self.workdir):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _wait in range(100):
                try:
                    done, _status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid if not _alive(pid) else 0
                if done:
                    break
                time.sleep(0.02)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        state["pids"] = {}
        self._save(state)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _is_our_unbound(pid, workdir):
    """Guard against pid reuse: the process must be unbound with our config."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return any(a.startswith(workdir.encode() + b"/") for a in argv) and b"-d" in argv


def main(argv):
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        sys.stderr.write("usage: %s start|stop DIR\n" % argv[0])
        return 2
    lab = Lab(argv[2])
    if argv[1] == "start":
        state = lab.start()
        print(json.dumps(state, sort_keys=True))
    else:
        lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
