# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A backup stage for the reliability campaign: writes SIZE deterministic
bytes to stdout in CHUNK-byte blocks, sleeping DELAY seconds between blocks.

    producer.py SIZE CHUNK DELAY SEED

The content depends only on (SIZE, CHUNK, SEED), so the campaign knows the
SHA-256 of every object without trusting palhm's manifest (lib.expected_sha).
Exec'ed directly by palhm (no shell), so palhm's PR_SET_PDEATHSIG reaches it.
"""

import os
import sys
import time


def blocks(size, chunk, seed):
    i = 0
    left = size
    while left > 0:
        n = min(chunk, left)
        yield bytes([(seed * 7 + i) % 251]) * n
        left -= n
        i += 1


def main():
    size, chunk, delay, seed = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    out = sys.stdout.fileno()
    for block in blocks(size, chunk, seed):
        view = memoryview(block)
        while view:
            try:
                n = os.write(out, view)
            except OSError as e:
                sys.stderr.write("producer: write error: %s\n" % e.strerror)
                return 1
            view = view[n:]
        if delay:
            time.sleep(delay)
    return 0


if __name__ == "__main__":
    sys.exit(main())
