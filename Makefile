# SPDX-License-Identifier: GPL-2.0
#
# bkalloc top-level Makefile.
#
#   make                      build bkalloc.ko against the project's own test
#                             kernel (set up in $BKALLOC_CACHE on first use)
#   make KDIR=/path LLVM=1    build against your own Rust-enabled kernel tree
#   make check                every test: host, lint, VM (min and debug kernels)
#   make demo                 the bcachefs #1108 story, end to end in QEMU
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

.PHONY: check demo
