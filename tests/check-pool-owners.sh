#!/bin/sh
# check-pool-owners.sh — the files of core/pool/ keep to their thread's part of the pool.
#
# TrPool is four parts named by their owner (core/pool/private.h).  The I/O thread's
# files never name the main thread's part, the main thread's files never name the I/O
# thread's part nor a worker, the I/O thread's files call none of the main thread's
# functions, the records' and bundles' files reach the main part only
# through a PoolMain argument, the policy is pure (GLib and its own header only), and
# no file of the pool grows past the size a reader takes in at once.
# Usage: check-pool-owners.sh SOURCE_ROOT.  Prints TAP.
pool="$1/core/pool"
n=0
failed=0

# check NAME FILES PATTERN: no line of FILES matches the extended regex PATTERN
check () {
  name=$1 files=$2 pattern=$3
  n=$((n + 1))
  hits=$(cd "$pool" && grep -nE "$pattern" $files)
  if [ -z "$hits" ]; then
    echo "ok $n /pool-owners/$name"
  else
    printf '%s\n' "$hits" | sed 's/^/# /'
    echo "not ok $n /pool-owners/$name"
    failed=1
  fi
}

echo "1..8"
io_files="answers.c io.c output.c slots.c"
main_files="pool.c stream.c"
check io-thread-never-touches-main "$io_files" '(->|\.)main\.|PoolMain|main\.(free_|next_id|outstanding|closed|joined)'
# nor calls what only the main thread may: these take from or give to its part
check io-thread-calls-no-main-function "$io_files" '\b(tr_async_unref|record_new|record_preallocate|record_free_lists|bundle_new|bundle_recycle|handoff_(submit|pump|set_input_ended|refuse|wake_io|deliver_output))[[:space:]]*\('
check main-thread-never-touches-io "$main_files" '(->|\.)io\.|PoolIo|\bWorker\b'
# deliver.c is the main thread's half of the crossing: the results queue, not the I/O part
check delivery-never-touches-io "deliver.c" '(->|\.)io\.|PoolIo|\bWorker\b|shared\.submitted\b'
check records-reach-main-by-argument "record.c bundle.c" '(->|\.)io\.|PoolIo|Worker\b'
check policy-is-pure "schedule.c schedule.h" '#include "(private|internal|link|wire)\.h"|TrPool\b|g_get_monotonic_time|g_get_real_time|g_atomic|g_mutex'
check handoff-is-the-only-crossing "$io_files $main_files" 'shared\.results|shared\.submitted\b'

n=$((n + 1))
long=$(cd "$pool" && wc -l *.c *.h | awk '$2 != "total" && $1 > 450 { print $2 ": " $1 " lines" }')
if [ -z "$long" ]; then
  echo "ok $n /pool-owners/no-file-over-450-lines"
else
  printf '%s\n' "$long" | sed 's/^/# /'
  echo "not ok $n /pool-owners/no-file-over-450-lines"
  failed=1
fi
exit $failed
