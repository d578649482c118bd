#!/bin/sh
# check-embed.sh EXPONENT PROGRAM [ARG...] — runs one of the README's embedding examples
# (tests/embed/) and checks, line by line, what it prints: the map's five results in
# order, then, in any order, the apply_async callbacks: two results, a worker killed by
# SIGABRT, a timeout, and the plugin's own error; and exit status 0.  TAP.
set -u
exp=$1
shift
echo "1..2"
out=$("$@")
rc=$?
[ "$rc" -eq 0 ] && echo "ok 1 - $1 exits 0" || echo "not ok 1 - $1 exited $rc"
power () { r=1; i=0; while [ $i -lt "$exp" ]; do r=$((r * $1)); i=$((i + 1)); done; echo $r; }
want=$(mktemp)
trap 'rm -f "$want"' EXIT
map=$(for i in 1 2 3 4 5; do echo "map $i: $(power $i)"; done)
cat > "$want" <<PATTERNS
^12: $(power 12)\$
^9: $(power 9)\$
^x: failed: not a number: x\$
^crash: failed: worker [12] \(pid [0-9]+\) killed by signal 6 \(SIGABRT\)\$
^hang: failed: timed out after 1 s \(worker [12], pid [0-9]+, stopped with SIGTERM\)\$
PATTERNS
bad=0
# the map's lines come first, in order
[ "$(printf '%s\n' "$out" | head -5)" = "$map" ] || { echo "# the map's results differ"; bad=1; }
while IFS= read -r pattern; do
  [ "$(printf '%s\n' "$out" | grep -Ec -- "$pattern")" -eq 1 ] || { echo "# no single line matches $pattern"; bad=1; }
done < "$want"
[ "$(printf '%s\n' "$out" | wc -l)" -eq 10 ] || bad=1
printf '%s\n' "$out" | sed 's/^/# /'
[ $bad -eq 0 ] && echo "ok 2 - prints what the README says" || echo "not ok 2 - prints what the README says"
