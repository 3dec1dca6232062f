# SPDX-License-Identifier: GPL-2.0
#
# bkalloc top-level Makefile.
#
#   make                      build bkalloc.ko against the project's own test
#                             kernel (set up in $BKALLOC_CACHE on first use)
#   make KDIR=/path LLVM=1    build against your own Rust-enabled kernel tree
#   make check                every test: host, lint, VM (min and debug kernels)
#   make demo                 the bcachefs #1108 story, end to end in QEMU
#   make shell                the test VM with a shell on its console
#   make help                 every target and its variables
#
# With KDIR set this is the usual out-of-tree module Makefile; Kbuild holds
# the object list.

ifneq ($(KDIR),)

modules modules_install clean rust-analyzer:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $@

.PHONY: modules modules_install clean rust-analyzer

else

FLAVOUR ?= min

modules:
	tools/testing/module.sh $(FLAVOUR)

clean:
	rm -rf rust/core/target tools/bkalloc/target

.PHONY: modules clean

endif

check:
	tools/testing/check.sh

demo:
	tools/testing/demo.sh

reliability:
	tools/testing/reliability.sh

crashtest:
	tools/testing/crashtest.sh

bench:
	tools/testing/bench.sh

shell:
	tools/testing/shell.sh

refresh:
	tools/testing/buildenv.sh --refresh

help:
	@echo 'bkalloc targets (run as root; set-up is cached in $$BKALLOC_CACHE,'
	@echo 'default /var/cache/bkalloc):'
	@echo '  make demo       bcachefs #1108 end to end in a QEMU VM with NVMe disks'
	@echo '  make check      every test: host, lint, VM tests on the min and debug kernels'
	@echo '                  T="PATTERN..." only the matching VM tests; KERNEL=min one kernel'
	@echo '  make shell      the test VM with a shell: DISKS=3 SIZE=1G KERNEL=min|debug'
	@echo '                  FRESH=1 (new disk images) IDLE=3600 (seconds of silence)'
	@echo '  make reliability  the fault, torn-write, corrupt-image, hostile-input and load'
	@echo '                  campaign in full on both kernels, with its report table'
	@echo '  make crashtest  every crash point of recorded workloads (CRASH_INSERTS=200'
	@echo '                  CRASH_SUBSETS=8 CRASH_REPLAY_KEYS=100 CRASH_REPLAY_SUBSETS=100'
	@echo '                  CRASH_SEED=1 KERNEL=min), with its report table'
	@echo '  make bench      speed against the physical limit, baselines in the same boot'
	@echo '                  (BENCH_INSERTS=2000 BENCH_TRIALS=1000 KERNEL=min): table, results.json, plots'
	@echo '                  in $$BKALLOC_CACHE/runs/bench/results'
	@echo '  make refresh    re-resolve the build environment against today'"'"'s archive'
	@echo '  make            bkalloc.ko against the min test kernel (FLAVOUR=debug)'
	@echo '  make KDIR=DIR LLVM=1   bkalloc.ko against your own Rust-enabled kernel tree'
	@echo '  make clean      remove the host crates'"'"' build output'
	@echo 'VM tests alone: tools/testing/run-tests.sh --kernel min|debug [--list] [PATTERN...]'

.PHONY: check demo shell refresh reliability crashtest bench help
