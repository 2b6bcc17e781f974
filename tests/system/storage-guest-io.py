#!/usr/bin/env python3
"""storage-guest-io.py - test-only: write and read a guest's disk through qemu-ga.

The storage system tests need the guest to write known data to its disks and
read it back.  The agent does not expose arbitrary guest-exec (and must not),
so the tests speak the guest-agent protocol themselves on the VM's qga socket
(<run-dir>/<vm>/qga.sock), which QEMU serves to one client at a time; the
agent connects there only for the length of a call, so the test must not run
this while it asks the agent for guest-agent work (fsfreeze, shutdown mode
agent).  Only /bin/dd is executed in the guest, with fixed arguments built
here: no shell.

Data is a deterministic pseudo-random pattern from a seed, so the host can
compute the expected digest without keeping the data:

  storage-guest-io.py SOCK write DEV OFFSET SIZE SEED   write SIZE bytes at OFFSET (sync, O_DIRECT)
  storage-guest-io.py SOCK start-write DEV OFFSET SIZE SEED   same in the background: prints the pid
  storage-guest-io.py SOCK wait PID [TIMEOUT_S]           wait for a background dd; exit 1 if it failed
  storage-guest-io.py SOCK md5 DEV OFFSET SIZE           md5 of what the guest reads (O_DIRECT)
  storage-guest-io.py SOCK stage FILE SIZE SEED          put the pattern into guest file FILE
                                                         (/tmp is the guest's RAM): slow once,
  storage-guest-io.py SOCK copy FILE DEV OFFSET SIZE     then fast copies of it to the disk
  storage-guest-io.py SOCK start-copy FILE DEV OFFSET SIZE   same in the background: prints the pid
  storage-guest-io.py SOCK ping                          true once qemu-ga answers
  storage-guest-io.py pattern-md5 SIZE SEED              md5 of the pattern (host side)
  storage-guest-io.py pattern-file FILE SIZE SEED        write the pattern to FILE (host side)

OFFSET and SIZE are multiples of 64 KiB.  Exit status 0 on success.
"""
import base64
import hashlib
import json
import os
import random
import socket
import sys
import time

BS = 65536


def pattern(size, seed):
    """Seed 0 is zeros (what a fresh or discarded disk reads)."""
    if int(seed) == 0:
        return bytes(size)
    return random.Random(int(seed)).randbytes(size)


class Qga:
    def __init__(self, path, timeout=30):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""
        self.sync()

    def _send(self, obj):
        self.s.sendall(json.dumps(obj).encode() + b"\n")

    def _line(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise RuntimeError("qga connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def sync(self):
        sid = random.randint(1, 1 << 30)
        self.s.sendall(b"\xff")
        self._send({"execute": "guest-sync-delimited", "arguments": {"id": sid}})
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self._line()
            if b"\xff" in line:
                line = line[line.rindex(b"\xff") + 1:]
            line = line.strip()
            if not line.startswith(b"{"):
                continue
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("return") == sid:
                return
        raise RuntimeError("qga did not sync")

    def call(self, cmd, args=None):
        msg = {"execute": cmd}
        if args is not None:
            msg["arguments"] = args
        self._send(msg)
        while True:
            line = self._line().strip().lstrip(b"\xff")
            if not line.startswith(b"{"):
                continue
            r = json.loads(line)
            if "error" in r:
                raise RuntimeError("%s: %s" % (cmd, r["error"].get("desc")))
            if "return" in r:
                return r["return"]

    def exec_start(self, args, data=None):
        a = {"path": "/bin/dd", "arg": args, "capture-output": True}
        if data is not None:
            a["input-data"] = base64.b64encode(data).decode()
        return self.call("guest-exec", a)["pid"]

    def exec_wait(self, pid, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            st = self.call("guest-exec-status", {"pid": pid})
            if st.get("exited"):
                out = base64.b64decode(st.get("out-data", ""))
                err = base64.b64decode(st.get("err-data", "")).decode(errors="replace")
                return st.get("exitcode", -1), out, err
            time.sleep(0.05)
        raise RuntimeError("guest dd %d did not finish" % pid)


def check_aligned(*vals):
    for v in vals:
        if int(v) % BS:
            sys.exit("offsets and sizes must be multiples of %d" % BS)


def dd_write_args(dev, off, size):
    return ["of=" + dev, "bs=%d" % BS, "seek=%d" % (off // BS), "count=%d" % (size // BS),
            "iflag=fullblock", "oflag=direct", "conv=fsync"]


def main(argv):
    if len(argv) >= 2 and argv[1] == "pattern-md5":
        print(hashlib.md5(pattern(int(argv[2]), argv[3])).hexdigest())
        return 0
    if len(argv) >= 2 and argv[1] == "pattern-file":
        with open(argv[2], "wb") as f:
            f.write(pattern(int(argv[3]), argv[4]))
        return 0
    sock, op = argv[1], argv[2]
    q = Qga(sock, 10 if op == "ping" else 30)
    if op == "ping":
        return 0
    if op in ("write", "start-write"):
        dev, off, size, seed = argv[3], int(argv[4]), int(argv[5]), argv[6]
        check_aligned(off, size)
        pid = q.exec_start(dd_write_args(dev, off, size), pattern(size, seed))
        if op == "start-write":
            print(pid)
            return 0
        code, _, err = q.exec_wait(pid)
        if code != 0:
            sys.stderr.write("dd failed (%d): %s\n" % (code, err))
        return 0 if code == 0 else 1
    if op == "stage":
        path, size, seed = argv[3], int(argv[4]), argv[5]
        check_aligned(size)
        if not path.startswith("/tmp/") or ".." in path:
            sys.exit("stage files live under /tmp")
        pid = q.exec_start(["of=" + path, "bs=%d" % BS, "count=%d" % (size // BS),
                            "iflag=fullblock"], pattern(size, seed))
        code, _, err = q.exec_wait(pid)
        if code != 0:
            sys.stderr.write("dd failed (%d): %s\n" % (code, err))
        return 0 if code == 0 else 1
    if op in ("copy", "start-copy"):
        path, dev, off, size = argv[3], argv[4], int(argv[5]), int(argv[6])
        check_aligned(off, size)
        pid = q.exec_start(["if=" + path] + dd_write_args(dev, off, size))
        if op == "start-copy":
            print(pid)
            return 0
        code, _, err = q.exec_wait(pid)
        if code != 0:
            sys.stderr.write("dd failed (%d): %s\n" % (code, err))
        return 0 if code == 0 else 1
    if op == "wait":
        code, _, err = q.exec_wait(int(argv[3]), int(argv[4]) if len(argv) > 4 else 120)
        if code != 0:
            sys.stderr.write("dd failed (%d): %s\n" % (code, err))
        return 0 if code == 0 else 1
    if op == "md5":
        dev, off, size = argv[3], int(argv[4]), int(argv[5])
        check_aligned(off, size)
        pid = q.exec_start(["if=" + dev, "bs=%d" % BS, "skip=%d" % (off // BS),
                            "count=%d" % (size // BS), "iflag=direct"])
        code, out, err = q.exec_wait(pid)
        if code != 0 or len(out) != size:
            sys.stderr.write("dd failed (%d, %d bytes): %s\n" % (code, len(out), err))
            return 1
        print(hashlib.md5(out).hexdigest())
        return 0
    sys.exit("unknown operation " + op)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
