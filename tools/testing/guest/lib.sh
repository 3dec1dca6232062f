# SPDX-License-Identifier: GPL-2.0
# Sourced by every guest test script (/test/run) before its body.
# Assertions print "FAIL: ..." and exit non-zero; the host reports the line.
set -u

# The status disk (NVMe serial bkstatus, added to every boot by the host):
# what the host must see even when the console's last lines never leave the
# guest. Neither the tty nor 7.3's 8250 console (an nbcon console with a
# printer thread) writes synchronously, so a reset or a poweroff right after
# an echo can lose it. Block 0 holds the boot's outcome, block 1 the last
# FAIL line, blocks 2 on the kernel log at exit; each write is fsync'ed to
# the device before it returns.
status_dev() {
	for _c in /sys/class/nvme/nvme*; do
		[ "$(tr -d ' ' <"$_c/serial")" = bkstatus ] || continue
		for _ns in "$_c"/nvme*n*; do
			[ -e "$_ns/dev" ] && { echo "/dev/${_ns##*/}"; return 0; }
		done
	done
	return 1
}

# status_write BLOCK TEXT
status_write() {
	_dev=$(status_dev) || { echo "no status disk (serial bkstatus)"; return 1; }
	printf '%s\n' "$2" | dd of="$_dev" bs=4096 seek="$1" count=1 conv=sync,fsync 2>/dev/null
}

# status_kmsg: the kernel log, from block 2 of the status disk on.
status_kmsg() {
	_dev=$(status_dev) || return 1
	dmesg | sed "s/^\[[ 0-9.]*\] //" | dd of="$_dev" bs=4096 seek=2 iflag=fullblock conv=sync,fsync 2>/dev/null
}

fail() {
	echo "FAIL: $*"
	status_write 1 "FAIL: $*" >/dev/null 2>&1
	exit 1
}

step() {
	echo "STEP: $*"
}

# expect_eq ACTUAL EXPECTED WHAT
expect_eq() {
	[ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"
}

# expect_file_eq FILE EXPECTED: the file's whole content.
expect_file_eq() {
	expect_eq "$(cat "$1")" "$2" "$1"
}

# expect_fail ERRNO_NAME CMD...: CMD must fail and its stderr name the errno
# (e.g. "Invalid argument").
expect_fail() {
	want=$1
	shift
	if out=$("$@" 2>&1); then
		fail "'$*' succeeded, expected failure ($want)"
	fi
	case $out in
	*"$want"*) ;;
	*) fail "'$*' failed with '$out', expected '$want'" ;;
	esac
}

# disk N: the block device of the host's disk N (NVMe serial bk<N>).
disk() {
	for c in /sys/class/nvme/nvme*; do
		[ "$(cat "$c/serial" | tr -d ' ')" = "bk$1" ] || continue
		for ns in "$c"/nvme*n*; do
			[ -e "$ns/dev" ] && { echo "/dev/${ns##*/}"; return 0; }
		done
	done
	fail "no NVMe disk with serial bk$1"
}

load_module() {
	insmod /lib/modules/bkalloc.ko "$@" || fail "insmod bkalloc.ko $*"
}

unload_module() {
	rmmod bkalloc || fail "rmmod bkalloc"
}

BK=/sys/fs/bkalloc

# write FILE VALUE: write VALUE to a sysfs FILE; on failure the shell's
# "write error: <strerror>" is on stderr (for expect_fail).
write() {
	sh -c 'echo "$2" > "$1"' sh "$1" "$2"
}

# format_disks N...: format the disks with the tool, as one volume.
format_disks() {
	devs=
	for i in "$@"; do devs="$devs $(disk "$i")"; done
	# shellcheck disable=SC2086
	bkalloc format --force $devs >/dev/null || fail "bkalloc format$devs"
}

# register_pair [OPTIONS [WHAT]]: registers disks 0 and 1 as one volume,
# with OPTIONS for this registration, and sets v (its directory) and u (its
# uuid); WHAT names the step in a failure.
register_pair() {
	write $BK/register "$(disk 0) $(disk 1)${1:+ $1}" || fail "${2:-register${1:+ $1}}"
	v=$(volume_dir)
	u=${v##*/}
}

# unregister_fsck [WHAT]: unregisters the only volume (its checkpoint) and
# checks disks 0 and 1 with fsck; WHAT names the check in a failure.
unregister_fsck() {
	write "$(volume_dir)/unregister" 1 || fail "unregister before ${1:-fsck}"
	bkalloc fsck "$(disk 0)" "$(disk 1)" || fail "${1:-fsck}"
}

# The uuid directory of the only registered volume.
volume_dir() {
	set -- $BK/*-*
	[ $# = 1 ] && [ -d "$1" ] || fail "expected one registered volume, found: $*"
	echo "$1"
}

# expect_no_volume: nothing registered.
expect_no_volume() {
	set -- $BK/*-*
	[ ! -e "$1" ] || fail "a volume is registered: $*"
}

# usage_of DEVDIR NAME: one value of dev-<i>/usage.
usage_of() {
	sed -n "s/^$2 //p" "$1/usage"
}

# show_count DISK STATE: the tool's bucket count of STATE on a member.
show_count() {
	bkalloc show "$(disk "$1")" | sed -n "s/.*buckets: .*\\b$2 \\([0-9]*\\).*/\\1/p" | head -n1
}

# as_nobody CMD: run a shell command as an unprivileged user.
as_nobody() {
	grep -q '^nobody:' /etc/passwd 2>/dev/null ||
		echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >>/etc/passwd
	su -s /bin/sh nobody -c "$1"
}

# wait_until SECS WHAT CMD...: poll CMD every 0.1 s until it succeeds; fail
# naming WHAT after SECS seconds. Every wait in a guest test is bounded.
wait_until() {
	_secs=$1 _what=$2
	shift 2
	_i=0
	while ! "$@" >/dev/null 2>&1; do
		_i=$((_i + 1))
		[ $_i -lt $((_secs * 10)) ] || fail "timed out after ${_secs}s waiting for: $_what"
		sleep 0.1
	done
}

# replayed_all WHAT: the volume's replay ($v/replay, logged) is done and
# replayed every one of its keys, at least one; else fail naming WHAT.
replayed_all() {
	_r=$(cat $v/replay)
	echo "INFO: replay: $_r"
	case $_r in "state=done replayed="*) ;; *) fail "$1: $_r" ;; esac
	# shellcheck disable=SC2086
	set -- $_r
	[ "${2#replayed=}" = "${3#total=}" ] && [ "${2#replayed=}" -gt 0 ] || fail "replayed: $_r"
}

# counter VOLDIR NAME: one value of the volume's counters file.
counter() {
	sed -n "s/^$2 //p" "$1/counters"
}

# nwaiters VOLDIR: lines in the volume's waiters file.
nwaiters() {
	wc -l <"$1/waiters" | tr -d ' '
}

# wait_waiters VOLDIR N: wait (10 s at most) until N requests are blocked.
wait_waiters() {
	wait_until 10 "$2 waiter(s) in $1/waiters" sh -c "[ \$(wc -l <$1/waiters) = $2 ]"
}

# bench_print: the "BENCH <json>" lines a boot kept in /tmp/bench, printed
# at its end with kernel messages off the console, so that none lands inside
# a line (the kernel log still reaches the status disk).
bench_print() {
	dmesg -n 1
	cat /tmp/bench
}

# wait_in_syscall PID NR WHAT: PID sleeps interruptibly inside x86-64
# system call NR (16 ioctl, 7 poll), as a wait that signals end does (the
# writer's gate, a poll); a process still starting up is not there yet.
wait_in_syscall() {
	wait_until 10 "$3 to sleep in system call $2" sh -c "grep -q '^$2 ' /proc/$1/syscall && grep -q '^[^ ]* ([^)]*) S' /proc/$1/stat"
}

# wait_in_ioctl PID WHAT: wait_in_syscall PID 16 WHAT.
wait_in_ioctl() {
	wait_in_syscall "$1" 16 "$2"
}

# The starved pair of devices of the scenarios below: dev0 has 1 free bucket
# (reserve 2) and 300 need_discard, dev1 200 (or $1) free and 100
# need_discard.
starved_devices() {
	cat <<EOF_TOML
[[device]]
free = 1
need_discard = 300
user = 8
btree_reserve = 2
[[device]]
free = ${1:-200}
need_discard = 100
user = 8
btree_reserve = 2
EOF_TOML
}

# scenario_header [LINE]: a scenario file's start: 64k buckets (and LINE,
# e.g. node_max_entries = 64), metadata_replicas 2, an empty btree and
# journal; the [[device]] sections follow.
scenario_header() {
	echo 'bucket_size = "64k"'
	[ -z "${1:-}" ] || echo "$1"
	cat <<'EOF_TOML'
[options]
metadata_replicas = 2
data_replicas = 1
[btree]
keys = 0
fill = 50
[journal]
keys = 0
checkpoint_seq = 0
EOF_TOML
}

# bench_scenario REPLICAS KEYS JOURNAL FREE NEED_DISCARD: a two-device
# scenario file: metadata_replicas REPLICAS, KEYS keys in the btree and
# JOURNAL more in the journal (2048 blocks), FREE free buckets on each
# device and NEED_DISCARD need_discard on dev0.
bench_scenario() {
	cat <<EOF_TOML
bucket_size = "64k"
journal_blocks = 2048
[options]
metadata_replicas = $1
[btree]
keys = $2
fill = 75
[journal]
keys = $3
checkpoint_seq = 1
[[device]]
free = $4
need_discard = $5
user = 0
btree_reserve = 2
[[device]]
free = $4
need_discard = 0
user = 0
btree_reserve = 2
EOF_TOML
}

# A small #1108-like state: device 0 has 1 free bucket (btree reserve 2)
# and 300 need_discard; device 1 has 200 free. 64 MiB disks.
starved_scenario() {
	{
		scenario_header
		starved_devices
	} >/tmp/starved.toml
	bkalloc scenario --force /tmp/starved.toml "$(disk 0)" "$(disk 1)" >/dev/null || fail "scenario"
}

# Resets the machine now, as a power cut would: no unregister, no sync, no
# shutdown. The marker goes to the status disk first (synced), so the host
# sees it and counts the boot as passed.
crash_now() {
	status_write 0 "BKALLOC-GUEST-CRASH: $*" || fail "cannot record the crash on the status disk"
	echo "BKALLOC-GUEST-CRASH: $*"
	echo b >/proc/sysrq-trigger
	sleep 30
	fail "the reset did not happen"
}

# The uuid of the registered volume.
volume_uuid() {
	v=$(volume_dir)
	echo "${v##*/}"
}

# Small nodes (8 entries) so a few hundred keys make a tree of several levels.
format_small_nodes() {
	bkalloc format --force --node-max-entries 8 --metadata-replicas 2 "$(disk 0)" "$(disk 1)" >/dev/null ||
		fail "format"
}

# replay_scenario [KEYS]: dev0 has 1 free bucket (reserve 2) and 300
# need_discard; full leaves of 32 (even keys 0..126) under the root; KEYS
# (default 40) journaled inserts after the checkpoint split one.
replay_scenario() {
	{
		cat <<EOF_TOML
bucket_size = "64k"
node_max_entries = 32
[options]
metadata_replicas = 2
data_replicas = 1
[btree]
keys = 64
fill = 100
[journal]
keys = ${1:-40}
checkpoint_seq = 100
records_per_entry = 8
EOF_TOML
		starved_devices
	} >/tmp/replay.toml
	bkalloc scenario --force /tmp/replay.toml "$(disk 0)" "$(disk 1)" >/dev/null || fail "scenario"
}

# bcachefs #1108's state (samples/issue-1108.toml) on disks 0 and 1.
issue1108_scenario() {
	bkalloc scenario --force /samples/issue-1108.toml "$(disk 0)" "$(disk 1)" >/dev/null ||
		fail "scenario issue-1108"
}

# check_keys UUID B J: every key a scenario left is readable with its
# value: B even keys 0, 2, ... in the btree and J odd keys 1, 3, ... from
# the journal (#1108's: 2728 and 64; replay_scenario's: 64 and 40).
check_keys() {
	bkalloc get $1 --from 0 --count $2 --step 2 --verify || fail "btree keys of the scenario"
	bkalloc get $1 --from 1 --count $3 --step 2 --verify || fail "journaled keys of the scenario"
}
# register_bg ARGS [SECS]: registers in the background (output in /tmp/reg,
# pid in $regpid) and waits up to SECS (60) for the volume's directory,
# which exists before replay.
register_bg() {
	write $BK/register "$1" >/tmp/reg 2>&1 &
	regpid=$!
	wait_until "${2:-60}" "the volume directory" sh -c "ls -d $BK/*-* >/dev/null"
}

# Waits for the background register to end; fails unless it succeeded.
register_done() {
	wait_until "${1:-120}" "register to return" sh -c "! kill -0 $regpid"
	wait $regpid || fail "register failed: $(cat /tmp/reg)"
}
