#!/bin/sh
# check-man.sh — the manual page renders with groff -man -ww and no warning at all.
# Prints TAP: one test.
echo "1..1"
warnings=$(groff -man -ww -z "$1" 2>&1)
if [ -z "$warnings" ]; then
  echo "ok 1 /man/renders-without-warnings"
else
  printf '%s\n' "$warnings" | sed 's/^/# /'
  echo "not ok 1 /man/renders-without-warnings"
  exit 1
fi
