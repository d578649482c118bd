# tap.sh — TAP lines for the shell tests (sourced): ok NAME, not_ok NAME, and
# check NAME COMMAND... (ok when COMMAND succeeds).  $failed is 1 once one failed.
# A hang-up, Ctrl-C or SIGTERM (meson's, at a timeout) exits the test through its EXIT
# trap, so that what it made is removed: dash runs that trap on exit only.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
n=0 failed=0
ok () { n=$((n + 1)); echo "ok $n $1"; }
not_ok () { n=$((n + 1)); echo "not ok $n $1"; failed=1; }
check () {
  tap_name=$1
  shift
  if "$@"; then ok "$tap_name"; else not_ok "$tap_name"; fi
}
