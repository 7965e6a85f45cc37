#!/bin/sh
# Boot-to-/init time of the patched PV guest under pvisor (pv mode), of the
# unmodified Linux guest under pvisor (hwassist and trap modes; interpreter)
# and under QEMU TCG, side by side in one run, alternating, N rounds. /init runs `cat /proc/uptime`, so the guest's own clock says how
# long the kernel took to reach user space; wall time is the whole run
# (boot, command, reset). QEMU is a test oracle only: install it with
# `apt-get install qemu-system-x86`.
#
#   scripts/boot-time.sh [rounds]
set -eu
cd "$(dirname "$0")/.."
rounds=${1:-3}
make -s build guest guest-pv >/dev/null
command -v qemu-system-x86_64 >/dev/null || { echo "boot-time: qemu-system-x86_64 not found: apt-get install qemu-system-x86" >&2; exit 2; }

cmd=$(printf 'cat /proc/uptime' | base64 -w0)
append="console=ttyS0 panic=-1 quiet pvisor.cmd=$cmd"
append_pv="console=hvc0 panic=-1 quiet pvisor.cmd=$cmd"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

now() { date +%s.%N; }

printf '%-8s %-22s %10s %14s %16s\n' round engine wall_s uptime_at_init instructions
for r in $(seq 1 "$rounds"); do
	for mode in pv hwassist trap; do
		kernel=build/guest/vmlinux-native args=$append
		if [ $mode = pv ]; then
			kernel=build/guest/vmlinux-pv args=$append_pv
		fi
		t0=$(now)
		build/pvisor run --stats --mode $mode --kernel $kernel \
			--initrd build/guest/initramfs.cpio.gz --cmdline "$args" </dev/null >"$tmp/p.out" 2>"$tmp/p.err" || true
		t1=$(now)
		up=$(grep -a -m1 -E '^[0-9]+\.[0-9]+ [0-9]+\.[0-9]+' "$tmp/p.out" | cut -d' ' -f1)
		ins=$(grep -a '^instructions:' "$tmp/p.err" | awk '{print $2}')
		printf '%-8s %-22s %10.3f %14s %16s\n' "$r" "pvisor $mode interp" "$(echo "$t1 - $t0" | bc)" "${up:-?}" "${ins:-?}"
	done

	t0=$(now)
	timeout 120 qemu-system-x86_64 -M pc -cpu base,+fpu,+pse,+pae,+cx8,+cmov,+fxsr,+sse,+sse2,+msr,+lm,+syscall \
		-m 256 -nographic -no-reboot -kernel build/guest/bzImage-native \
		-initrd build/guest/initramfs.cpio.gz -append "$append" </dev/null >"$tmp/q.out" 2>&1 || true
	t1=$(now)
	up=$(grep -a -m1 -E '^[0-9]+\.[0-9]+ [0-9]+\.[0-9]+' "$tmp/q.out" | cut -d' ' -f1)
	printf '%-8s %-22s %10.3f %14s %16s\n' "$r" "qemu tcg" "$(echo "$t1 - $t0" | bc)" "${up:-?}" "-"
done

# QEMU's instruction count: with -icount shift=0 one guest instruction is one
# nanosecond of guest time, so the uptime at /init counts the instructions
# from kernel start (the kernel's own clock starts after the decompressor).
timeout 300 qemu-system-x86_64 -M pc -cpu base,+fpu,+pse,+pae,+cx8,+cmov,+fxsr,+sse,+sse2,+msr,+lm,+syscall \
	-icount shift=0,sleep=off -m 256 -nographic -no-reboot -kernel build/guest/bzImage-native \
	-initrd build/guest/initramfs.cpio.gz -append "$append" </dev/null >"$tmp/i.out" 2>&1 || true
up=$(grep -a -m1 -E '^[0-9]+\.[0-9]+ [0-9]+\.[0-9]+' "$tmp/i.out" | cut -d' ' -f1)
printf '%-8s %-22s %10s %14s %16s\n' icount "qemu tcg -icount 0" "-" "${up:-?}" "$(echo "${up:-0} * 1000000000 / 1" | bc)"
