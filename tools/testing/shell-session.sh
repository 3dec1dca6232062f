#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make shell` driven as a person would, through its console: format two
# disks, register them, tune an option, unregister, exit. Each command's
# output must show up on the console within a bound; the session must end.
#   tools/testing/shell-session.sh [min|debug]
set -uo pipefail
. "$(dirname "$0")/lib.sh"

flavour=${1:-min}
factor=1
[ "$flavour" = debug ] && factor=4
dir=$BKALLOC_CACHE/shell-session
rm -rf "$dir"
mkdir -p "$dir"
fifo=$dir/console.in
out=$dir/console.out
mkfifo "$fifo"
DISKS=2 SIZE=256M FRESH=1 IDLE=$((120 * factor)) KERNEL=$flavour \
	"$TESTING_DIR/shell.sh" <"$fifo" >"$out" 2>&1 &
vm=$!
exec 3>"$fifo"
trap 'exec 3>&-; kill $vm 2>/dev/null' EXIT

# expect SECS TEXT: TEXT shows up on the console within SECS seconds.
expect() {
	local i
	for ((i = 0; i < $1 * $factor * 10; i++)); do
		grep -qF -- "$2" "$out" && return 0
		kill -0 $vm 2>/dev/null || break
		sleep 0.1
	done
	echo "FAIL: '$2' did not show on the console within $(($1 * factor))s; console:"
	tail -n 30 "$out"
	exit 1
}
# send LINE: type LINE and Enter.
send() {
	echo "$1" >&3
}

# Markers are split with '' so the terminal's echo of the typed command
# does not match them; only the command's output does.
expect 900 BKALLOC-SHELL-READY
send 'bkalloc format $(disk 0) $(disk 1) >/dev/null && echo FORMAT-''OK'
expect 60 FORMAT-OK
send 'echo "$(disk 0) $(disk 1)" > /sys/fs/bkalloc/register && v=$(ls -d /sys/fs/bkalloc/*-*) && echo REGISTER-''OK $v'
expect 60 REGISTER-OK
send 'echo 7 > $v/options/allocator_stuck_timeout; echo TIMEOUT-''IS-$(cat $v/options/allocator_stuck_timeout)'
expect 30 TIMEOUT-IS-7
send 'echo WAITERS-''$(wc -l < $v/waiters)'
expect 30 WAITERS-0
send 'echo 1 > $v/unregister && echo VOLUMES-''LEFT-$(ls /sys/fs/bkalloc/ | grep -c -- -)'
expect 60 VOLUMES-LEFT-0
send 'exit'
for ((i = 0; i < 60 * factor * 10; i++)); do
	kill -0 $vm 2>/dev/null || break
	sleep 0.1
done
kill -0 $vm 2>/dev/null && { echo "FAIL: the VM did not stop after exit"; exit 1; }
grep -q 'BKALLOC-GUEST-EXIT: 0' "$out" || { echo "FAIL: no clean exit on the console"; tail -n 20 "$out"; exit 1; }
echo "shell session: format, register, option, unregister and exit done (console: $out)"
