# pvisor — see README.md. The two entry points for a new machine:
#   make run    build what is missing and boot the default guest
#   make test   everything CI checks
GO      ?= go
BIN     := build/pvisor
TESTTIMEOUT ?= 60m
# The in-guest programs of the initramfs (below, at INITRD_ADD).
GUEST_BINS  := pvbench netflood smpcount gosmp
# Pure Go: a static binary, and the VMM's sandbox can confine every
# thread only in a build without cgo (hv/sandbox).
export CGO_ENABLED := 0

.PHONY: all build run run-native disk test deps deps-guest guest fmt-check vet generate gen-check unit bench clean testguest guest-pv attack-initramfs checkpatch

all: build

deps:
	@scripts/install-deps.sh

deps-guest:
	@scripts/install-deps.sh guest

build:
	@mkdir -p build
	$(GO) build -o $(BIN) ./cmd/pvisor

# The default guest: the patched PV Linux 6.12 kernel (linux-patches/) with
# busybox, in pv mode (the default --mode); an interactive shell on this
# terminal, Ctrl-] quits. run-native boots the unmodified kernel in hwassist
# mode instead.
# With DISK=1 both boot from the ext4 root filesystem of make disk
# (build/guest/rootfs.ext4, on /dev/vda) instead of the initramfs.
ifeq ($(DISK),1)
ROOT_DEPS := disk
ROOT_ARGS  = --disk build/guest/rootfs.ext4
ROOT_CMD  := root=/dev/vda rw rootfstype=ext4 init=/init
else
ROOT_DEPS :=
ROOT_ARGS  = --initrd build/guest/initramfs.cpio.gz
ROOT_CMD  :=
endif

run: deps build guest-pv $(ROOT_DEPS)
	$(BIN) run --kernel build/guest/vmlinux-pv $(ROOT_ARGS) \
		--cmdline "console=hvc0 panic=-1 quiet $(ROOT_CMD)"

run-native: deps build guest $(ROOT_DEPS)
	$(BIN) run --mode hwassist --kernel build/guest/vmlinux-native $(ROOT_ARGS) \
		--cmdline "console=ttyS0 panic=-1 quiet $(ROOT_CMD)"

# The root filesystem image: the initramfs's tree (busybox, /init, pvbench)
# as a 64 MiB ext4 image, built with Debian's mke2fs -d; not rebuilt when it
# exists and its inputs are older (the guest may have written to it).
ROOTFS_DIR := build/guest/rootfs.d
disk: deps-guest build/guest/rootfs.ext4

build/guest/rootfs.ext4: $(GUEST_BINS:%=build/guest/%) guestkit/cmd/mkinitramfs/init.sh guestkit/cmd/mkinitramfs/main.go guestkit/cmd/mkinitramfs/dirtree.go
	rm -rf $(ROOTFS_DIR) $@.tmp
	$(GO) run ./guestkit/cmd/mkinitramfs -dir $(ROOTFS_DIR) $(INITRD_ADD)
	PATH="$$PATH:/sbin:/usr/sbin" mke2fs -q -F -t ext4 -L pvisor-root -E root_owner=0:0 -d $(ROOTFS_DIR) $@.tmp 64M
	rm -rf $(ROOTFS_DIR)
	mv $@.tmp $@

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

generate:
	$(GO) generate ./...

# Generated files must be fresh: regenerate and compare with the tree.
gen-check:
	@$(GO) generate ./... && git diff --exit-code --stat -- . || \
		{ echo "generated files are stale: run 'make generate' and commit"; exit 1; }

unit:
	$(GO) test -timeout $(TESTTIMEOUT) ./...

# The guests the tests boot are built first (cached by input hash: a
# second run takes seconds); checkpatch then uses the source tree that
# guest-pv unpacked.
test: deps fmt-check vet gen-check guest guest-pv checkpatch testguest unit

# The freestanding test guest (guestkit/testguest), loaded at 1 MiB.
TG_DIR    := guestkit/testguest
TG_SRCS   := $(wildcard $(TG_DIR)/*.S $(TG_DIR)/*.c)
TG_CFLAGS := -O2 -ffreestanding -fno-pic -fno-pie -no-pie -mno-red-zone -fno-stack-protector \
	-fcf-protection=none -nostdlib -static -mgeneral-regs-only -fno-asynchronous-unwind-tables \
	-Wall -Wextra -Wno-unused-parameter -Iguestkit/include -Wl,-T,$(TG_DIR)/link.ld -Wl,--build-id=none

testguest: deps build/testguest.elf

build/testguest.elf: $(TG_SRCS) $(TG_DIR)/testguest.h $(TG_DIR)/link.ld guestkit/include/pvisor/hypercall.h
	@mkdir -p build
	gcc $(TG_CFLAGS) -o $@ $(TG_SRCS)

# The Linux guest (docs/guest.md): kernel built from Debian's linux-source-6.12
# and linux-patches/, cached outside the checkout by input hash, plus the
# busybox initramfs. Outputs in build/guest/.
# In-guest programs the initramfs carries: /bin/pvbench (pvisor bench linux),
# /bin/netflood (a frame generator for tests of the switch's limits), and
# /bin/smpcount and /bin/gosmp (threads on shared counters, and a static Go
# program's view of the CPUs with a parallel SHA-256: tests/smp_test.go).
# The unprivileged attack programs of guestkit/tests go into a second
# initramfs of their own, initramfs-attack.cpio.gz (tests/unpriv_test.go),
# so that the default guest stays what `make run` boots.
UNPRIV      := tlbalias int8 privinsn logl randcode cpuidloop mprotectloop
UNPRIV_BINS := $(UNPRIV:%=build/guest/%)
INITRD_ADD  := $(foreach p,$(GUEST_BINS),-add build/guest/$(p):bin/$(p))
ATTACK_ADD  := $(INITRD_ADD) $(foreach p,$(UNPRIV),-add build/guest/$(p):bin/$(p))

# The patched PV kernel (linux-patches/ + config/pv.config), for pv mode.
guest-pv: deps-guest $(GUEST_BINS:%=build/guest/%)
	scripts/build-guest.sh pv
	$(GO) run ./guestkit/cmd/mkinitramfs -o build/guest/initramfs.cpio.gz $(INITRD_ADD)

guest: deps-guest $(GUEST_BINS:%=build/guest/%)
	scripts/build-guest.sh native
	$(GO) run ./guestkit/cmd/mkinitramfs -o build/guest/initramfs.cpio.gz $(INITRD_ADD)

# The initramfs with the attack programs (the kernels come from guest and
# guest-pv).
attack-initramfs: $(GUEST_BINS:%=build/guest/%) $(UNPRIV_BINS)
	$(GO) run ./guestkit/cmd/mkinitramfs -o build/guest/initramfs-attack.cpio.gz $(ATTACK_ADD)

# The kernel's scripts/checkpatch.pl over linux-patches/series, from the
# source tree build-guest.sh unpacked (make guest-pv first); fails on any
# error.
checkpatch:
	scripts/checkpatch.sh

build/guest/pvbench: guestkit/pvbench/pvbench.c
	@mkdir -p build/guest
	gcc -O2 -static -pthread -Wall -Wextra -o $@ $<

build/guest/netflood: guestkit/netflood/netflood.c
	@mkdir -p build/guest
	gcc -O2 -static -Wall -Wextra -o $@ $<

build/guest/smpcount: guestkit/smpcount/smpcount.c
	@mkdir -p build/guest
	gcc -O2 -static -pthread -Wall -Wextra -o $@ $<

build/guest/gosmp: guestkit/gosmp/main.go guestkit/gosmp/smpdata/smpdata.go
	@mkdir -p build/guest
	$(GO) build -o $@ ./guestkit/gosmp

$(UNPRIV_BINS): build/guest/%: guestkit/tests/%.c guestkit/tests/unpriv.h guestkit/tests/stubs.h
	@mkdir -p build/guest
	gcc -O2 -static -fno-stack-protector -Wall -Wextra -o $@ $< -lm

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./hv/interp

clean:
	rm -rf build
