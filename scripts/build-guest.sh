#!/bin/sh
# Builds pvisor's Linux guest kernel from Debian's linux-source-6.12 and the
# project's own files (linux-patches/), caching the result outside the checkout.
#
#   scripts/build-guest.sh [FLAVOUR]      FLAVOUR defaults to "native"
#
# Inputs:
#   /usr/src/linux-source-6.12.tar.xz     (apt: linux-source-6.12; see
#                                          scripts/install-deps.sh guest)
#   linux-patches/series                  patch names, one per line, applied in order
#                                          with patch -p1 ('#' comments; may be empty
#                                          or absent)
#   linux-patches/config/base.config      Kconfig fragment, then
#   linux-patches/config/FLAVOUR.config   if it exists
#
# Outputs (copied from the cache):
#   build/guest/vmlinux-FLAVOUR           uncompressed ELF kernel, booted by pvisor
#   build/guest/bzImage-FLAVOUR           compressed kernel, for QEMU and bootloaders
#   build/guest/config-FLAVOUR            the final .config
#   build/guest/System.map-FLAVOUR        symbol addresses, for traces
#
# Cache: ${PVISOR_CACHE:-$HOME/.cache/pvisor}
#   src/linux-VERSION-KEY/                unpacked and patched source (KEY: tarball + patches)
#   obj/linux-VERSION-KEY-FLAVOUR/        object tree (O=), reused by later builds
#   guest/HASH/                           finished results; HASH is a sha256 over the
#                                         tarball's identity, the compiler version, the
#                                         config fragments, every patch and this script
#
# Environment: PVISOR_CACHE, PVISOR_KERNEL_TARBALL, PVISOR_JOBS (default: nproc).
set -eu

say() { echo "build-guest: $*"; }
die() {
	echo "build-guest: error: $*" >&2
	exit 1
}

root=$(cd "$(dirname "$0")/.." && pwd)
self="$root/scripts/build-guest.sh"
flavour=${1:-native}
case $flavour in
*[!a-z0-9_-]* | "") die "bad flavour name '$flavour'" ;;
esac

cache=${PVISOR_CACHE:-${HOME:-/tmp}/.cache/pvisor}
tarball=${PVISOR_KERNEL_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
pkg=linux-source-6.12
patchdir="$root/linux-patches"
series="$patchdir/series"
outdir="$root/build/guest"
jobs=${PVISOR_JOBS:-$(nproc 2>/dev/null || echo 2)}
arch=x86_64

for tool in make gcc flex bison bc tar xz sha256sum; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "'$tool' is missing: run scripts/install-deps.sh guest (as root) or make deps-guest"
done
[ -r "$tarball" ] ||
	die "$tarball not found: run scripts/install-deps.sh guest (as root) or make deps-guest"

fragments="$patchdir/config/base.config"
[ -r "$fragments" ] || die "missing $fragments"
[ -r "$patchdir/config/$flavour.config" ] && fragments="$fragments $patchdir/config/$flavour.config"
[ "$flavour" = native ] || [ -r "$patchdir/config/$flavour.config" ] ||
	die "unknown flavour '$flavour' (no linux-patches/config/$flavour.config)"

# Patches named by the series file, in order. The native flavour is the
# unmodified kernel (trap and hwassist modes measure it), so only patched
# flavours (pv) get the series.
patches=""
if [ "$flavour" != native ] && [ -r "$series" ]; then
	for p in $(sed -e 's/#.*//' "$series"); do
		[ -r "$patchdir/$p" ] || die "series names $p, but linux-patches/$p does not exist"
		patches="$patches $p"
	done
fi

mkdir -p "$cache/src" "$cache/obj" "$cache/guest" "$outdir"

# One build at a time per cache (parallel make invocations, CI jobs).
if command -v flock >/dev/null 2>&1; then
	exec 9>"$cache/lock"
	if ! flock -n 9; then
		say "waiting for another build using $cache"
		flock 9
	fi
fi

sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---- Input identity -------------------------------------------------------
version=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || echo unknown)
src_id="source $tarball $(stat -c '%s %Y' "$tarball") $version"
patch_ids=""
for p in $patches; do
	patch_ids="${patch_ids}patch $p $(sha "$patchdir/$p")
"
done
srckey=$(printf '%s\n%s' "$src_id" "$patch_ids" | sha256sum | cut -c1-12)

manifest=$(
	echo "format pvisor-guest 1"
	echo "flavour $flavour"
	echo "arch $arch"
	echo "$src_id"
	echo "compiler $(gcc --version | head -n1)"
	echo "script $(sha "$self")"
	for f in $fragments; do echo "fragment ${f#"$root/"} $(sha "$f")"; done
	printf '%s' "$patch_ids"
)
hash=$(printf '%s\n' "$manifest" | sha256sum | cut -d' ' -f1)
result="$cache/guest/$hash"

# Copies the cached results into build/guest/ (atomically per file).
install_outputs() {
	for f in vmlinux bzImage config System.map; do
		cp "$result/$f" "$outdir/$f-$flavour.tmp.$$"
		mv -f "$outdir/$f-$flavour.tmp.$$" "$outdir/$f-$flavour"
	done
	say "outputs in ${outdir#"$root/"}/: vmlinux-$flavour bzImage-$flavour config-$flavour System.map-$flavour"
}

if [ -f "$result/done" ]; then
	say "cache hit ($flavour, ${hash%"${hash#????????????}"}): $result"
	install_outputs
	exit 0
fi

say "cache miss ($flavour, ${hash%"${hash#????????????}"}); kernel $version, $jobs jobs"
start=$(date +%s)

elapsed() {
	s=$(($(date +%s) - $1))
	printf '%dm%02ds' $((s / 60)) $((s % 60))
}

# Runs "$@" in the background, printing a line every 30 s until it ends.
# $1: label; $2: log file ("" for none); the rest: the command. With a log, the
# count of compiled files so far is shown too.
with_progress() {
	label=$1
	log=$2
	shift 2
	t0=$(date +%s)
	if [ -n "$log" ]; then
		"$@" >"$log" 2>&1 &
	else
		"$@" &
	fi
	pid=$!
	n=0
	while kill -0 "$pid" 2>/dev/null; do
		sleep 1
		n=$((n + 1))
		if [ $((n % 30)) -eq 0 ]; then
			if [ -n "$log" ]; then
				c=$(grep -c -E '^ +(CC|AS|HOSTCC|LD|AR|OBJCOPY)( |$)' "$log" || true)
				say "  $label: $(elapsed "$t0"), $c files compiled/linked"
			else
				say "  $label: $(elapsed "$t0")"
			fi
		fi
	done
	if wait "$pid"; then
		return 0
	fi
	return 1
}

# ---- Source tree ------------------------------------------------------------
src="$cache/src/linux-$(echo "$version" | tr -c 'A-Za-z0-9.+\n-' '_')-$srckey"
if [ ! -f "$src/.pvisor-ready" ]; then
	tmp="$cache/src/.unpack.$$"
	rm -rf "$tmp" "$src"
	mkdir -p "$tmp"
	say "unpacking $tarball (under a minute)"
	with_progress unpacking "" tar -xJf "$tarball" -C "$tmp" ||
		die "unpacking $tarball failed"
	top=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d)
	[ -f "$top/Makefile" ] || die "unexpected tarball layout in $tarball"
	for p in $patches; do
		say "applying $p"
		patch -p1 -s -N -d "$top" <"$patchdir/$p" || die "patch $p does not apply"
	done
	touch "$top/.pvisor-ready"
	mv "$top" "$src"
	rm -rf "$tmp"
fi

# ---- Configuration ------------------------------------------------------------
obj="$cache/obj/$(basename "$src")-$flavour"
mkdir -p "$obj"
# Reproducible banner (uname -v, /proc/version) whatever the host.
export KBUILD_BUILD_USER=pvisor KBUILD_BUILD_HOST=pvisor KBUILD_BUILD_VERSION=1
KBUILD_BUILD_TIMESTAMP=$(date -u -d "@$(stat -c %Y "$tarball")")
export KBUILD_BUILD_TIMESTAMP
kmake() { make -C "$src" O="$obj" ARCH="$arch" "$@"; }

fraglist=""
for f in $fragments; do fraglist="$fraglist ${f#"$root/"}"; done
say "configuring: make tinyconfig, then merging$fraglist"
kmake tinyconfig >"$obj/pvisor-config.log" 2>&1 ||
	{ tail -n 30 "$obj/pvisor-config.log"; die "make tinyconfig failed (log: $obj/pvisor-config.log)"; }
# merge_config.sh makes its temporary files in the current directory.
# shellcheck disable=SC2086
(cd "$obj" && "$src/scripts/kconfig/merge_config.sh" -m .config $fragments) >>"$obj/pvisor-config.log" 2>&1 ||
	{ tail -n 30 "$obj/pvisor-config.log"; die "merge_config.sh failed"; }
kmake olddefconfig >>"$obj/pvisor-config.log" 2>&1 ||
	{ tail -n 30 "$obj/pvisor-config.log"; die "make olddefconfig failed"; }

# Every option of the fragments must have the requested value in the final
# .config: Kconfig silently drops what a dependency forbids.
# shellcheck disable=SC2086
cat $fragments >"$obj/pvisor-fragment.config"
bad=$(awk '
	NR == FNR {
		if (match($0, /^CONFIG_[A-Za-z0-9_]+=/)) {
			s = substr($0, 1, RLENGTH - 1); v = substr($0, RLENGTH + 1)
			want[s] = (v == "n") ? "n" : v
		} else if ($0 ~ /^# CONFIG_[A-Za-z0-9_]+ is not set$/) {
			want[$2] = "n"
		}
		next
	}
	match($0, /^CONFIG_[A-Za-z0-9_]+=/) { have[substr($0, 1, RLENGTH - 1)] = substr($0, RLENGTH + 1) }
	END {
		for (s in want) {
			h = (s in have) ? have[s] : "n"
			if (h != want[s])
				printf "  %s: wanted %s, got %s\n", s, want[s], (h == "n") ? "not set" : h
		}
	}' "$obj/pvisor-fragment.config" "$obj/.config" | sort)
if [ -n "$bad" ]; then
	echo "build-guest: error: Kconfig did not keep these options of the fragment:" >&2
	echo "$bad" >&2
	echo "build-guest: fix linux-patches/config/ (a dependency is missing or the option cannot be changed)" >&2
	exit 1
fi
say "config verified: $(grep -c -E '^(CONFIG_|# CONFIG_.* is not set$)' "$obj/pvisor-fragment.config") fragment options as requested"

# ---- Build ------------------------------------------------------------------------
say "building vmlinux and bzImage with make -j$jobs (about 5 minutes on 2 cores; log: $obj/pvisor-build.log)"
if ! with_progress compiling "$obj/pvisor-build.log" kmake -j"$jobs" vmlinux bzImage; then
	tail -n 40 "$obj/pvisor-build.log" >&2
	die "kernel build failed (full log: $obj/pvisor-build.log)"
fi

# ---- Cache and install --------------------------------------------------------------
tmp="$cache/guest/.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
cp "$obj/vmlinux" "$tmp/vmlinux"
cp "$obj/arch/x86/boot/bzImage" "$tmp/bzImage"
cp "$obj/.config" "$tmp/config"
cp "$obj/System.map" "$tmp/System.map"
cp "$obj/pvisor-build.log" "$tmp/build.log"
printf '%s\n' "$manifest" >"$tmp/inputs"
touch "$tmp/done"
rm -rf "$result"
mv "$tmp" "$result"

say "built in $(elapsed "$start"): kernel $(cat "$obj/include/config/kernel.release" 2>/dev/null || echo '?'), vmlinux $(($(stat -c %s "$result/vmlinux") / 1024)) KiB, bzImage $(($(stat -c %s "$result/bzImage") / 1024)) KiB"
install_outputs
