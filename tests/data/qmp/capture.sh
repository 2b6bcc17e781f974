#!/bin/sh
# capture.sh - records what the real QEMU sends over QMP, for the fake monitor.
#
# Starts one qemu-system-x86_64 (TCG, -nodefaults, -S, 128 MiB, a tiny boot
# sector that honours the ACPI power button), talks QMP to it from python3 and
# writes one file per exchange into this directory: <name>.jsonl holds every
# line QEMU sent from the moment the command was written until the reply and
# the events the step waits for (plus anything arriving within 200 ms after);
# the temp directory is written as /var/lib/strata/capture.
# The first line of greeting.jsonl is QEMU's greeting.  Commands carry ids
# "strata-<n>" like the client's; the fake monitor (tests/unit/qmp/
# fake_monitor.c) rewrites the "id" of each reply to the id it received.
#
# Run it again only when moving to another QEMU version:
#     sh tests/data/qmp/capture.sh            (QEMU=/path/to/qemu-system-x86_64)
# then review `git diff tests/data/qmp` and run the unit tests.  Needs python3
# and qemu-img.  Every QEMU it starts is killed by PID; temp files are removed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
qemu=${QEMU:-qemu-system-x86_64}
tmp=$(mktemp -d /tmp/strata-qmp-capture.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM

qemu-img create -q -f qcow2 "$tmp/disk.qcow2" 64M

python3 - "$here" "$qemu" "$tmp" <<'PYEOF'
import json, os, select, socket, subprocess, sys, time

outdir, qemu, tmp = sys.argv[1:4]

# Boot sector (16-bit real mode, position independent), assembled from:
#   cli
#   mov $0x602,%dx; mov $0x100,%ax; out %ax,(%dx)   # PM1_EN: power button
# 1:mov $0x600,%dx; in (%dx),%ax                    # PM1_STS
#   test $0x100,%ax; je 1b                          # wait for PWRBTN_STS
#   mov $0x604,%dx; mov $0x2000,%ax; out %ax,(%dx)  # PM1_CNT: SLP_EN, S5
# 2:hlt; jmp 2b
# PIIX4's PM block sits at 0x600 on QEMU's 'pc' machine (see `info mtree`).
code = bytes.fromhex("faba0206b80001efba0006eda9000174f7ba0406b80020eff4ebfd")
boot = code + bytes(510 - len(code)) + b"\x55\xaa"
with open(os.path.join(tmp, "boot.img"), "wb") as f:
    f.write(boot + bytes(65536 - len(boot)))

qmp_path = os.path.join(tmp, "qmp.sock")
argv = [qemu, "-accel", "tcg", "-nodefaults", "-display", "none", "-S",
        "-machine", "pc", "-m", "128M,slots=2,maxmem=1G", "-smp", "1,maxcpus=2",
        "-chardev", "socket,id=mon0,path=%s,server=on,wait=off" % qmp_path,
        "-mon", "chardev=mon0,mode=control",
        "-object", "memory-backend-ram,id=mem1,size=128M",
        "-device", "pc-dimm,id=dimm1,memdev=mem1",
        "-device", "virtio-balloon-pci,id=balloon0",
        "-blockdev", "driver=file,filename=%s/boot.img,node-name=boot0-file" % tmp,
        "-blockdev", "driver=raw,file=boot0-file,node-name=boot0",
        "-device", "ide-hd,drive=boot0,id=ide0,bootindex=0",
        "-blockdev", "driver=file,filename=%s/disk.qcow2,node-name=disk0-file" % tmp,
        "-blockdev", "driver=qcow2,file=disk0-file,node-name=disk0",
        "-device", "virtio-blk-pci,drive=disk0,id=vda",
        "-device", "virtio-serial-pci,id=vser0",
        "-chardev", "socket,id=qga0,path=%s/qga.sock,server=on,wait=off" % tmp,
        "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0,id=qgaport"]
proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
try:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + 10
    while True:
        try:
            sock.connect(qmp_path)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)

    buf = b""
    def read_line(timeout):
        global buf
        end = time.monotonic() + timeout
        while b"\n" not in buf:
            left = end - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                return None
            chunk = sock.recv(1 << 20)
            if not chunk:
                return b""
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        return line + b"\n"

    files = {}
    def save(name, lines):
        assert name not in files, name
        files[name] = b"".join(lines)

    save("greeting", [read_line(10)])
    counter = [0]

    def step(name, command, args=None, events=(), fds=None, wait=10.0):
        counter[0] += 1
        cid = "strata-%d" % counter[0]
        msg = {"execute": command, "id": cid}
        if args is not None:
            msg["arguments"] = args
        data = (json.dumps(msg) + "\n").encode()
        if fds:
            socket.send_fds(sock, [data], fds)
        else:
            sock.sendall(data)
        lines, replied, want = [], False, list(events)
        end = time.monotonic() + wait
        while not replied or want:
            line = read_line(max(0.0, end - time.monotonic()))
            if not line:
                sys.exit("capture: step '%s': no reply or events %s" % (name, want))
            lines.append(line)
            obj = json.loads(line)
            if obj.get("id") == cid:
                replied = True
            elif "event" in obj and obj["event"] in want:
                want.remove(obj["event"])
        while True:
            line = read_line(0.2)
            if not line:
                break
            lines.append(line)
        save(name, lines)
        return [json.loads(l) for l in lines]

    step("qmp_capabilities", "qmp_capabilities")
    step("query-status-prelaunch", "query-status")
    step("query-qmp-schema", "query-qmp-schema")
    step("query-cpus-fast", "query-cpus-fast")
    step("query-hotpluggable-cpus", "query-hotpluggable-cpus")
    step("query-memory-devices", "query-memory-devices")
    step("query-memory-size-summary", "query-memory-size-summary")
    step("query-balloon", "query-balloon")
    step("query-block", "query-block")
    step("query-blockstats", "query-blockstats")
    step("query-named-block-nodes", "query-named-block-nodes")
    step("query-chardev", "query-chardev")
    step("error-command-not-found", "no-such-command")
    step("error-device-not-found", "device_del", {"id": "no-such-device"})
    step("error-generic", "blockdev-add", {"driver": "file", "node-name": "x",
                                           "filename": os.path.join(tmp, "missing/x")})
    with open(os.devnull, "rb") as f:
        step("getfd", "getfd", {"fdname": "fd0"}, fds=[f.fileno()])
    step("closefd", "closefd", {"fdname": "fd0"})
    step("device_del", "device_del", {"id": "qgaport"}, events=["DEVICE_DELETED"])
    step("blockdev-create", "blockdev-create",
         {"job-id": "create0",
          "options": {"driver": "file", "filename": os.path.join(tmp, "backup.raw"),
                      "size": 64 << 20}},
         events=["JOB_STATUS_CHANGE"] * 4)
    step("query-jobs", "query-jobs")
    step("job-dismiss", "job-dismiss", {"id": "create0"}, events=["JOB_STATUS_CHANGE"])
    step("blockdev-add", "blockdev-add",
         {"driver": "raw", "node-name": "backup0",
          "file": {"driver": "file", "filename": os.path.join(tmp, "backup.raw")}})
    step("blockdev-backup", "blockdev-backup",
         {"job-id": "backup0", "device": "disk0", "target": "backup0", "sync": "full"},
         events=["BLOCK_JOB_COMPLETED"])
    step("blockdev-del", "blockdev-del", {"node-name": "backup0"})
    step("cont", "cont", events=["RESUME"])
    step("query-status-running", "query-status")
    step("stop", "stop", events=["STOP"])
    step("query-status-paused", "query-status")
    step("cont-again", "cont", events=["RESUME"])
    time.sleep(1.0)     # let SeaBIOS reach the boot sector
    step("system_reset", "system_reset", events=["RESET"])
    time.sleep(1.0)
    step("system_powerdown", "system_powerdown", events=["POWERDOWN", "SHUTDOWN"])
    tail = read_line(10)
    if tail != b"":
        sys.exit("capture: QEMU did not close the monitor after SHUTDOWN: %r" % tail)
    proc.wait(timeout=10)
finally:
    if proc.poll() is None:
        proc.kill()
        proc.wait()

# The temp directory's random name would make every capture differ.
for name, data in files.items():
    with open(os.path.join(outdir, name + ".jsonl"), "wb") as f:
        f.write(data.replace(tmp.encode(), b"/var/lib/strata/capture"))
print("capture: wrote %d files to %s" % (len(files), outdir))
PYEOF
