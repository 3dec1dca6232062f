# SPDX-License-Identifier: GPL-2.0
# The VM side of a test, sourced by run-tests.sh into each test's subshell.
#
# A test is a bash function `test_<name>` in tools/testing/tests/*.sh. It
# declares its disks and boots the VM one or more times with a guest script:
#
#   test_example() {
#       disks 2 1G                 # NVMe disks bk0, bk1: sparse raw images
#       vm_guest <<'EOF'           # runs as /test/run in the guest
#   load_module
#   [ -d /sys/fs/bkalloc ] || fail "no /sys/fs/bkalloc"
#   EOF
#   }
#
# vm_guest returns the guest script's exit status; any failure fails the test.
# Between boots the host can inspect the images ($(disk_image N)). Every boot
# also has a small status disk (serial bkstatus) where the guest records its
# outcome with a synced write: see status_write in guest/lib.sh.
#
# Environment from the runner: FLAVOUR, KERNEL_DIR, BASE_INITRD, WORK,
# TIMEOUT_FACTOR, BKALLOC_KVM; VM_CONSOLE=/dev/stdout shows the guest's
# console live (the demo does), and it is always kept in serial-<boot>.log.

# vm_prepare FLAVOUR: build (or reuse) the kernel, module, tool and base
# initramfs, and export what vm_guest needs.
vm_prepare() {
	FLAVOUR=$1
	KERNEL_DIR=$("$TESTING_DIR/kernel.sh" "$FLAVOUR") || return 1
	local module tool
	module=$("$TESTING_DIR/module.sh" "$FLAVOUR") || return 1
	tool=$("$TESTING_DIR/tool.sh") || return 1
	BASE_INITRD=$("$TESTING_DIR/initramfs.sh" "$FLAVOUR" "$module" "$tool") || return 1
	# The slow debug kernel (KASAN under TCG) gets proportionally longer
	# watchdogs.
	TIMEOUT_FACTOR=1
	[ "$FLAVOUR" = debug ] && TIMEOUT_FACTOR=4
	export FLAVOUR KERNEL_DIR BASE_INITRD TIMEOUT_FACTOR
}

VM_BOOTS=0
VM_DISKS=()
VM_MEM=${VM_MEM:-}
# Extra -drive options for the test disks, e.g. "throttling.iops-total=100"
# to make the guest's I/O slow enough to race against.
VM_DRIVE_OPTS=${VM_DRIVE_OPTS:-}
# Device faults through QEMU's blkdebug driver: a space-separated list of
# DISK:IOTYPE:SECTOR[:once] (IOTYPE read, write, flush or discard; SECTOR in
# 512-byte units, or "any"): disk DISK fails those requests with EIO, for the
# whole boot or once. E.g. "1:write:0" fails every write to disk 1's block 0.
VM_FAULTS=${VM_FAULTS:-}
# Every discard to disks 0 and 1 fails: their need_discard buckets stay so
# (the module retries with backoff), which holds a starved device starved.
FAILING_DISCARDS="0:discard:any 1:discard:any"

# blkdebug_config DISK: writes the blkdebug rules of VM_FAULTS for DISK to
# $WORK/blkdebug-DISK.conf and prints its guest-visible path; nothing (and
# no file) when DISK has none.
blkdebug_config() {
	local f=$WORK/blkdebug-$1.conf fault disk iotype sector once any=0
	rm -f "$f"
	for fault in $VM_FAULTS; do
		IFS=: read -r disk iotype sector once <<<"$fault"
		[ "$disk" = "$1" ] || continue
		case $iotype in read | write | flush | discard) ;;
		*) echo "vm: VM_FAULTS: '$fault': iotype must be read, write, flush or discard" >&2; return 1 ;;
		esac
		{
			echo '[inject-error]'
			# "none" fires once, when the node opens: the rule is active for
			# the whole boot (no other event has rules to replace it).
			echo 'event = "none"'
			echo "iotype = \"$iotype\""
			[ "$sector" = any ] || echo "sector = \"$sector\""
			echo 'errno = "5"'
			[ "$once" = once ] && echo 'once = "on"'
			echo
		} >>"$f"
		any=1
	done
	[ $any = 1 ] && echo "/cache/${f#"$BKALLOC_CACHE"/}"
	return 0
}

# disks COUNT SIZE: (re)create COUNT sparse images of SIZE (truncate syntax).
disks() {
	local i
	VM_DISKS=()
	VM_LOGGED=
	for ((i = 0; i < $1; i++)); do
		rm -f "$WORK/disk$i.img"
		truncate -s "$2" "$WORK/disk$i.img"
		VM_DISKS+=("$WORK/disk$i.img")
	done
}

# attach_disk FILE: one more disk, an existing image (e.g. a write log to
# read in the guest).
attach_disk() {
	VM_DISKS+=("$1")
}

# logged_disks COUNT MIB [ACK_MIB]: for the next boots, COUNT member disks
# of MIB MiB and an acknowledgement disk of ACK_MIB (default 1), numbered
# 0..COUNT (serials bk0..), are slices of one image, $WORK/logged.img,
# under QEMU's blklogwrites driver: every write, discard and flush the
# guest sends to any of them lands in $WORK/write.log, in one order (the
# order they completed), with its data; a fresh log each boot. The
# workload writes an acknowledgement to the last disk with O_DIRECT after
# each change it was told is durable, so the log orders those too. A flush
# of any slice is a flush of the whole node. `disks` ends this mode.
VM_LOGGED=
logged_disks() {
	local ack=${3:-1}
	VM_DISKS=()
	VM_LOGGED="$1 $2 $ack"
	rm -f "$WORK/logged.img"
	truncate -s $((($1 * $2 + ack) << 20)) "$WORK/logged.img"
}

# logged_drives: the QEMU options of logged_disks' node and its slices.
logged_drives() {
	local count mib ack i
	read -r count mib ack <<<"$VM_LOGGED"
	: >"$WORK/write.log"
	local img=/cache/${WORK#"$BKALLOC_CACHE"/}/logged.img log=/cache/${WORK#"$BKALLOC_CACHE"/}/write.log
	# discard=unmap on every node: a -blockdev node drops discards otherwise.
	echo "-blockdev driver=file,node-name=lgfile,filename=$img,discard=unmap"
	echo "-blockdev driver=file,node-name=lglog,filename=$log"
	echo "-blockdev driver=blklogwrites,node-name=lg,file=lgfile,log=lglog,log-sector-size=512,discard=unmap"
	for ((i = 0; i <= count; i++)); do
		local size=$((mib << 20))
		[ $i = "$count" ] && size=$((ack << 20))
		echo "-blockdev driver=raw,node-name=lg$i,file=lg,offset=$((i * mib << 20)),size=$size,discard=unmap"
		echo "-device nvme,serial=bk$i,drive=lg$i,share-rw=on"
	done
}

# status_block IMAGE N: the first line of block N of a status disk.
status_block() {
	dd if="$1" bs=4096 skip="$2" count=1 2>/dev/null | tr -d '\0' | head -n1
}

disk_image() {
	echo "$WORK/disk$1.img"
}

# Bytes actually allocated to an image file on the host.
allocated_bytes() {
	echo $(($(stat -c %b "$1") * $(stat -c %B "$1")))
}

# vm_guest [--timeout SECS] [--append ARGS] < SCRIPT
# vm_guest --interactive IDLE --script SCRIPT
# Boot the VM with the disks declared so far and run SCRIPT in it. The
# timeout (default 120 s) is scaled by TIMEOUT_FACTOR for slow kernels; a
# guest that overruns it is killed and the boot fails. --interactive gives
# the console to the caller's terminal (stdin, VM_CONSOLE) with no overall
# bound: the VM is stopped only once its console is silent for IDLE seconds.
vm_guest() {
	local timeout=120 append="" idle=0 stdin=/dev/null script=/dev/stdin
	while [ $# -gt 0 ]; do
		case $1 in
		--timeout) timeout=$2; shift 2 ;;
		--append) append=$2; shift 2 ;;
		--interactive) idle=$2; stdin=/dev/stdin; shift 2 ;;
		--script) script=$2; shift 2 ;;
		*) echo "vm_guest: unknown argument $1" >&2; return 2 ;;
		esac
	done
	timeout=$((timeout * TIMEOUT_FACTOR))
	VM_BOOTS=$((VM_BOOTS + 1))
	local n=$VM_BOOTS
	local stage=$WORK/boot-$n
	rm -rf "$stage"
	mkdir -p "$stage/test"
	{
		echo ". /lib/bkalloc-test.sh"
		cat "$script"
	} >"$stage/test/run"
	local serial=$WORK/serial-$n.log
	local mem=${VM_MEM:-512}
	[ "$FLAVOUR" = debug ] && mem=${VM_MEM:-1024}
	local accel="-accel tcg -cpu max"
	[ "${BKALLOC_KVM:-0}" = 1 ] && accel="-accel kvm -cpu host"
	local drives="" i=0 img
	local faults
	if [ -n "$VM_LOGGED" ]; then
		drives=$(logged_drives | tr '\n' ' ')
		# Disks attached besides come after the slices.
		i=$((${VM_LOGGED%% *} + 1))
	fi
	for img in "${VM_DISKS[@]}"; do
		faults=$(blkdebug_config $i) || return 1
		drives="$drives -drive file=${faults:+blkdebug:$faults:}/cache/${img#"$BKALLOC_CACHE"/},if=none,id=d$i,format=raw,discard=unmap${VM_DRIVE_OPTS:+,$VM_DRIVE_OPTS}"
		drives="$drives -device nvme,serial=bk$i,drive=d$i"
		i=$((i + 1))
	done
	# The status disk, last so the test disks keep their NVMe numbering.
	local status=$WORK/status-$n.img
	rm -f "$status"
	truncate -s 1M "$status"
	drives="$drives -drive file=/cache/${status#"$BKALLOC_CACHE"/},if=none,id=status,format=raw"
	drives="$drives -device nvme,serial=bkstatus,drive=status"
	local gwork=/cache/${WORK#"$BKALLOC_CACHE"/}
	echo "vm: boot $n ($FLAVOUR kernel, ${#VM_DISKS[@]} disks, timeout ${timeout}s, log $serial)"
	local start=$SECONDS qrc=0
	local console="-chardev stdio,id=con,signal=off,logfile=$gwork/serial-$n.log -serial chardev:con"
	if [ "$idle" != 0 ]; then
		# A person at the console: Ctrl-a x quits, Ctrl-a c is QEMU's monitor.
		console="-chardev stdio,id=con,mux=on,signal=off,logfile=$gwork/serial-$n.log"
		console="$console -serial chardev:con -mon chardev=con,mode=readline"
	fi
	in_chroot /bin/sh -uc '
		gwork=$1; n=$2; timeout=$3; kernel=$4; base=$5; mem=$6; accel=$7; drives=$8; append=$9
		console=${10}; idle=${11}
		cd "$gwork/boot-$n" && find . | cpio -o -H newc --quiet | gzip -1 >"$gwork/extra-$n.cpio.gz"
		cat "$base" "$gwork/extra-$n.cpio.gz" >"$gwork/initrd-$n.cpio.gz"
		set -- qemu-system-x86_64 -machine q35 $accel -smp 2 -m "$mem" \
			-kernel "$kernel/arch/x86/boot/bzImage" -initrd "$gwork/initrd-$n.cpio.gz" \
			-append "console=ttyS0 panic=-1 oops=panic $append" \
			-display none -no-reboot $drives $console
		if [ "$idle" = 0 ]; then
			timeout --signal=KILL "$timeout" "$@" -monitor none </dev/null
			rc=$?
		else
			# Interactive: no overall bound, but a console silent for $idle
			# seconds (no output, no echo of typing) ends the VM.
			log=$gwork/serial-$n.log pidf=$gwork/qemu-$n.pid
			(
				while sleep 10; do
					[ -f "$pidf" ] && [ -f "$log" ] || continue
					kill -0 "$(cat "$pidf")" 2>/dev/null || exit 0
					if [ $(($(date +%s) - $(stat -c %Y "$log"))) -ge "$idle" ]; then
						echo "bkalloc: the console was idle for ${idle}s: stopping the VM" >&2
						kill -9 "$(cat "$pidf")"
						exit 0
					fi
				done
			) &
			watchdog=$!
			"$@" -pidfile "$pidf"
			rc=$?
			kill $watchdog 2>/dev/null
			rm -f "$pidf"
		fi
		rm -f "$gwork/extra-$n.cpio.gz" "$gwork/initrd-$n.cpio.gz"
		exit $rc
	' sh "$gwork" "$n" "$timeout" "/cache/${KERNEL_DIR#"$BKALLOC_CACHE"/}" \
		"/cache/${BASE_INITRD#"$BKALLOC_CACHE"/}" "$mem" "$accel" "$drives" "$append" \
		"$console" "$idle" <"$stdin" >"${VM_CONSOLE:-/dev/null}" || qrc=$?
	local took=$((SECONDS - start))
	sed -n 's/^\(STEP\|FAIL\|INFO\): /  guest: &/p' "$serial"
	if [ $qrc = 137 ]; then
		echo "vm: boot $n hung: killed by the watchdog after ${timeout}s"
		return 124
	fi
	# The outcome is read from the status disk (the guest synced it before
	# powering off or resetting); the console's copy may have been lost.
	local outcome lastfail grc
	outcome=$(status_block "$status" 0)
	lastfail=$(status_block "$status" 1)
	# The kernel log at exit, scanned for splats like the console.
	dd if="$status" bs=4096 skip=2 2>/dev/null | tr -d '\0' >"$WORK/kmsg-$n.log"
	grc=$(echo "$outcome" | sed -n 's/^BKALLOC-GUEST-EXIT: \([0-9]*\)$/\1/p')
	# A FAIL line the console did not deliver.
	if [ "${grc:-0}" != 0 ] && [ -n "$lastfail" ] && ! grep -qF -- "$lastfail" "$serial"; then
		echo "  guest: $lastfail"
	fi
	if [ -z "$grc" ]; then
		if [ "${outcome%%:*}" = BKALLOC-GUEST-CRASH ]; then
			# crash_now: the guest reset itself on purpose, no clean shutdown.
			echo "vm: boot $n reset by the guest on purpose (${took}s)"
			return 0
		fi
		echo "vm: boot $n ended without a guest exit status (qemu rc $qrc, ${took}s): crash?"
		return 125
	fi
	echo "vm: boot $n guest exit $grc (${took}s)"
	return "$grc"
}
