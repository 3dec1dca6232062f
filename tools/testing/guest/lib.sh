# SPDX-License-Identifier: GPL-2.0
# Sourced by every guest test script (/test/run) before its body.
# Assertions print "FAIL: ..." and exit non-zero; the host reports the line.
set -u

fail() {
	echo "FAIL: $*"
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
