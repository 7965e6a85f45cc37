#!/bin/sh
# Installs what pvisor's build and tests need on a Debian machine, once:
# packages already present are not touched. Run as root or with sudo.
#
#   scripts/install-deps.sh          packages for building pvisor and its tests
#   scripts/install-deps.sh guest    also what building the Linux guests needs
set -eu

base="gcc binutils make"
# libc6-dev: the kernel's host tools (kconfig, fixdep, objtool) need libc headers,
# which gcc does not pull in with --no-install-recommends; it also has the static libc
# guestkit/pvbench links. patch: linux-patches/series. qemu-system-x86: the test
# oracle (the patched kernel's native boot test, cmd/tracediff, scripts/boot-time.sh).
# perl: the kernel's scripts/checkpatch.pl (scripts/checkpatch.sh). e2fsprogs:
# mke2fs -d for make disk and the ext4 images of the tests, debugfs and e2fsck to
# read them back. iproute2 and util-linux: ip, unshare and nsenter for the tests
# that give pvisor serve a network namespace and a TAP uplink (TestOnDemand).
# strace: the reference count TestSyscallMonitor holds pvisor audit's counts to.
guest="libc6-dev flex bison bc libelf-dev cpio xz-utils patch perl busybox-static e2fsprogs linux-source-6.12 qemu-system-x86 iproute2 util-linux strace"

want="$base"
[ "${1:-}" = guest ] && want="$want $guest"

missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
	exit 0
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
