#!/bin/sh
# /init of pvisor's Linux guests, written into the initramfs by
# guestkit/cmd/mkinitramfs. Protocol (also in docs/guest.md):
#
#   1. Mounts proc on /proc, sysfs on /sys, devtmpfs on /dev, devpts on /dev/pts.
#   2. If the kernel command line has pvisor.cmd=B64, where B64 is the base64 of
#      a shell command, runs it with sh -c, then prints on the console
#          pvisor-exit: STATUS
#      (STATUS: the command's exit status; 2 if B64 does not decode) and stops
#      the machine.
#   3. Otherwise starts an interactive shell on the console; when it exits,
#      prints "pvisor-exit: STATUS" the same way and stops the machine.
#
# Stopping: the kernel has no ACPI, so a power-off would only halt the CPU with
# interrupts off. /init reboots instead (reboot -f): the kernel resets the
# machine through the keyboard controller (out 0xFE to port 0x64), or with a
# triple fault when booted with reboot=t. QEMU started with -no-reboot exits
# on that reset; pvisor ends the run at the "pvisor-exit:" line or the reset.

export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root
export PS1='pvisor:\w\$ '
umask 022

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || true
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts 2>/dev/null || true
hostname pvisor

stop() {
	# A disk root (make disk) is written back before the reset.
	sync
	echo "pvisor-exit: $1"
	reboot -f
	# Not reached unless the reset failed.
	sleep 2
	echo "pvisor: reboot failed, halting" >&2
	poweroff -f
	while :; do sleep 3600; done
}

# Read pvisor.cmd= from the command line (no globbing of its words).
set -f
cmd64=
for arg in $(cat /proc/cmdline); do
	case $arg in
	pvisor.cmd=*) cmd64=${arg#pvisor.cmd=} ;;
	esac
done
set +f

if [ -n "$cmd64" ]; then
	if cmd=$(printf '%s' "$cmd64" | base64 -d) && [ -n "$cmd" ]; then
		sh -c "$cmd"
		stop $?
	fi
	echo "pvisor: pvisor.cmd is not valid base64" >&2
	stop 2
fi

echo "pvisor: interactive shell; 'exit' stops the machine"
setsid cttyhack sh
stop $?
