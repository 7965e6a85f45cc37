#!/bin/sh
# Runs the kernel's own scripts/checkpatch.pl over the guest patch series
# (linux-patches/series, in order) and fails if any patch has an error.
#
#   scripts/checkpatch.sh [CHECKPATCH-OPTION...]
#
# checkpatch.pl comes from the Linux source tree scripts/build-guest.sh unpacks
# into its cache, ${PVISOR_CACHE:-$HOME/.cache/pvisor}/src/linux-VERSION-KEY/
# (the tree is complete once .pvisor-ready exists; `make guest` or
# `make guest-pv` creates it). Every such tree is unpacked from the same
# linux-source-6.12 tarball and the series does not touch scripts/, so any of
# them holds the same checkpatch.pl; the most recently unpacked one is used.
# PVISOR_KERNEL_SRC names another Linux tree to take it from instead.
#
# checkpatch.pl runs with --no-tree (the series applies to a tarball, not to
# the tree the script sits in, which already has the patches applied) and
# --strict; options given to this script are passed on after those.
# Warnings and checks are shown but only errors fail.
set -eu

say() { echo "checkpatch: $*"; }
die() {
	echo "checkpatch: error: $*" >&2
	exit 1
}

root=$(cd "$(dirname "$0")/.." && pwd)
patchdir="$root/linux-patches"
series="$patchdir/series"
cache=${PVISOR_CACHE:-${HOME:-/tmp}/.cache/pvisor}

command -v perl >/dev/null 2>&1 ||
	die "perl is missing: run scripts/install-deps.sh guest (as root) or make deps-guest"

if [ -n "${PVISOR_KERNEL_SRC:-}" ]; then
	src=$PVISOR_KERNEL_SRC
	[ -r "$src/scripts/checkpatch.pl" ] ||
		die "PVISOR_KERNEL_SRC=$src has no scripts/checkpatch.pl"
else
	src=""
	# Newest first; names never hold blanks (see build-guest.sh).
	for d in $(ls -td "$cache"/src/linux-*/ 2>/dev/null); do
		if [ -f "$d/.pvisor-ready" ] && [ -r "$d/scripts/checkpatch.pl" ]; then
			src=${d%/}
			break
		fi
	done
	[ -n "$src" ] ||
		die "no unpacked Linux source in $cache/src: run 'make guest-pv' first (it unpacks /usr/src/linux-source-6.12.tar.xz there), or set PVISOR_KERNEL_SRC to a Linux 6.12 tree"
fi
checkpatch="$src/scripts/checkpatch.pl"

[ -r "$series" ] || die "missing $series"
patches=$(sed -e 's/#.*//' "$series")
[ -n "$patches" ] || {
	say "linux-patches/series is empty: nothing to check"
	exit 0
}

say "using $checkpatch"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
failed=0
errors=0
warnings=0
checks=0
for p in $patches; do
	[ -r "$patchdir/$p" ] || die "series names $p, but linux-patches/$p does not exist"
	# checkpatch.pl exits 1 whenever it reports anything: its total line,
	# not its status, says how bad that was.
	perl "$checkpatch" --no-tree --strict --color=never "$@" "$patchdir/$p" >"$out" 2>&1 || true
	total=$(grep -E '^total: [0-9]+ errors, [0-9]+ warnings, ' "$out" | tail -n 1 || true)
	if [ -z "$total" ]; then
		cat "$out" >&2
		die "checkpatch.pl did not finish on $p"
	fi
	e=$(echo "$total" | sed -E 's/^total: ([0-9]+) errors.*/\1/')
	w=$(echo "$total" | sed -E 's/^total: [0-9]+ errors, ([0-9]+) warnings.*/\1/')
	c=$(echo "$total" | sed -n -E 's/^total: .* warnings, ([0-9]+) checks.*/\1/p')
	c=${c:-0}
	errors=$((errors + e))
	warnings=$((warnings + w))
	checks=$((checks + c))
	say "$p: $e errors, $w warnings, $c checks"
	if [ "$e" -ne 0 ] || [ "$w" -ne 0 ] || [ "$c" -ne 0 ]; then
		# The report without checkpatch's closing advice.
		sed -e '/^NOTE: /,$d' "$out"
	fi
	[ "$e" -eq 0 ] || failed=$((failed + 1))
done

say "series: $errors errors, $warnings warnings, $checks checks"
[ "$failed" -eq 0 ] ||
	die "$failed patch(es) with errors: fix them in linux-patches/ (the kernel's Documentation/process/coding-style.rst)"
