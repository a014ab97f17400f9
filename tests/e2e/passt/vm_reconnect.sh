#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# vm_reconnect.sh - a qemu guest killed in the middle of a download, then a second one that must pass every check
#
# Same topology, guest and checks as ../shared/vm/run-vm.sh (whose files it uses), but passt runs
# without -1: the first qemu is killed with SIGKILL while its guest downloads 4 MiB, and a second
# qemu connects to the same passt and runs all checks. Prints the second guest's console, so the
# VMLAB-RESULT lines can be read as run-vm.sh's; exit status 0 if they all pass and passt survived.
# Usage: vm_reconnect.sh PASST      env: VMLAB_SHARED (../shared), VM_CACHE, XFAIL, TIMEOUT (300)
set -u
VM=${VMLAB_SHARED:-$(cd "$(dirname "$0")/../../../../shared" && pwd)}/vm
C=${VM_CACHE:-${TMPDIR:-/tmp}/passt-vm}; export VM_CACHE=$C
if [ "${VMLAB_INNER:-}" != 1 ]; then
	[ -f $C/out/initramfs.cpio.gz ] || $VM/build-initramfs.sh || exit 1
	VMLAB_INNER=1 exec unshare -Urn --kill-child=SIGTERM "$0" "$@"
fi
PASST=$1
W=$(mktemp -d $C/reconnect.XXXX); SOCK=$W/passt.socket
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT
. $VM/netns-lib.sh
setup_netns; PIDS+=($ROUTER_PID)
python3 $VM/servers.py --tag hostlo 127.0.0.1 ::1 >$W/srv-lo.log 2>&1 & PIDS+=($!)
$RNS python3 $VM/servers.py --tag remote 203.0.113.5 2001:db8:1::5 >$W/srv-remote.log 2>&1 & PIDS+=($!)
"$PASST" -f -l $W/passt.log -s $SOCK -P $W/passt.pid -t 8081 -u 8082 >$W/passt.out 2>&1 & PASST_PID=$!; PIDS+=($PASST_PID)
for _ in $(seq 100); do [ -S $SOCK ] && break; sleep 0.05; done
BIGSHA=$(python3 $VM/servers.py --print-big-sha)
echo "[host] passt ready, workdir $W"

qemu() { # console-log; exec: the caller's $! is qemu itself
	exec qemu-system-x86_64 -machine pc,accel=tcg -cpu max -smp 1 -m 256 \
		-nodefaults -no-user-config -display none -serial file:$1 -no-reboot \
		-kernel $C/out/vmlinuz -initrd $C/out/initramfs.cpio.gz \
		-append "console=ttyS0 quiet loglevel=3 panic=-1 vl_bigsha=$BIGSHA ${XFAIL:+vl_xfail=$XFAIL}" \
		-netdev stream,id=n,server=off,addr.type=unix,addr.path=$SOCK \
		-device virtio-net-pci,netdev=n </dev/null >/dev/null 2>&1
}

# First guest: killed once the 4 MiB download has started (the line before it is tcp6_remote).
(qemu $W/console1.log) & Q1=$!; PIDS+=($Q1)
for _ in $(seq 3000); do grep -q 'VMLAB-RESULT tcp6_remote' $W/console1.log 2>/dev/null && break; sleep 0.1; done
sleep 0.15
echo "[host] first guest got as far as: $(grep -o 'VMLAB-RESULT [a-z0-9_]*' $W/console1.log | tail -n1)"
kill -KILL $Q1; wait $Q1 2>/dev/null
echo "[host] first qemu killed"
sleep 0.5
kill -0 $PASST_PID 2>/dev/null || { echo "[host] passt died with the first qemu"; tail -n 20 $W/passt.log; exit 1; }

# Second guest: every check, inbound included.
python3 $VM/inbound_probe.py 8081 8082 ${TIMEOUT:-300} >$W/probe.log 2>&1 & PIDS+=($!)
(qemu $W/console2.log) & Q2=$!; PIDS+=($Q2)
for _ in $(seq $((${TIMEOUT:-300} * 10))); do kill -0 $Q2 2>/dev/null || break; sleep 0.1; done
tr -d '\r' <$W/console2.log
echo "----- passt.log (tail)"; tail -n 15 $W/passt.log
kill -0 $PASST_PID 2>/dev/null || { echo "[host] passt is gone after the second qemu"; exit 1; }
grep -q '^VMLAB-SUMMARY PASS' <(tr -d '\r' <$W/console2.log)
