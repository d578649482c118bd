#!/bin/sh
# check-exports.sh LIBTASKRUN SOURCE_ROOT — libtaskrun's public version node, TASKRUN_1,
# holds exactly the functions that the installed headers declare, and every other name
# it exports is a tr_ name in TASKRUN_PRIVATE.  TAP.
set -u
lib=$1
root=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# shellcheck disable=SC2046
cc -E -P $(pkg-config --cflags glib-2.0) -I "$root/core" "$root/core/taskrun/taskrun.h" \
  | grep -o '\btr_[a-z0-9_]* *(' | tr -d ' (' | sort -u > "$dir/declared"
nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' > "$dir/exported"
sed -n 's/@@TASKRUN_1$//p' "$dir/exported" | sort -u > "$dir/public"
echo "1..3"
[ -s "$dir/declared" ] && echo "ok 1 - the headers declare $(wc -l < "$dir/declared") functions" \
  || echo "not ok 1 - no declaration found in the headers"
if cmp -s "$dir/declared" "$dir/public"; then
  echo "ok 2 - TASKRUN_1 is what the headers declare"
else
  echo "not ok 2 - TASKRUN_1 differs from the headers (< declared only, > exported only):"
  diff "$dir/declared" "$dir/public" | grep '^[<>]' | sed 's/^/# /'
fi
others=$(grep -v '@@TASKRUN_1$' "$dir/exported" | grep -v '^tr_[a-z0-9_]*@@TASKRUN_PRIVATE$')
[ -z "$others" ] && echo "ok 3 - every other export is a tr_ name in TASKRUN_PRIVATE" \
  || { echo "not ok 3 - exported outside the two nodes:"; echo "$others" | sed 's/^/# /'; }
