#!/bin/sh
# check-readme-examples.sh ROOT — the README's embedding examples are the files that the
# tests build and run: each of tests/embed/{in-program,power,with-plugin}.c appears in
# README.md whole, as one ```c block.  TAP.
set -u
root=$1
blocks=$(mktemp -d)
trap 'rm -rf "$blocks"' EXIT
awk -v dir="$blocks" '
  /^```c$/ { n++; file = dir "/" n ".c"; printf "" > file; inside = 1; next }
  /^```$/ && inside { inside = 0; close (file); next }
  inside { print >> file }
' "$root/README.md"
echo "1..3"
i=0
for example in in-program power with-plugin; do
  i=$((i + 1))
  found=no
  for block in "$blocks"/*.c; do
    cmp -s "$block" "$root/tests/embed/$example.c" && found=yes
  done
  [ $found = yes ] && echo "ok $i - README shows tests/embed/$example.c" \
    || echo "not ok $i - README has no \`\`\`c block equal to tests/embed/$example.c"
done
