#!/bin/sh
# check-report.sh TASKRUN TESTKIT_SO BUILD_DIR — the --report page, loaded from its file in
# headless Chromium as a user opens it: one timeline lane per worker, the slowest task
# first in its table, a worker's death drawn, the page's script run to its end, no
# console message at all; each page is also kept as a screenshot under BUILD_DIR
# (report-*.png), for a person to look at.  Prints TAP.
set -u
taskrun=$1 testkit=$2 build=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/tap.sh"

# browse PAGE NAME: the DOM after the page's scripts ran, in $work/NAME.dom; what Chromium
# logged, in $work/NAME.log; a screenshot in BUILD_DIR/report-NAME.png
browse () {
  for what in dump-dom screenshot; do
    arg=--dump-dom
    [ "$what" = screenshot ] && arg=--screenshot="$build/report-$2.png"
    timeout 120 chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars \
      --user-data-dir="$work/profile" --window-size=1300,1000 --enable-logging=stderr --v=0 \
      "$arg" "file://$1" > "$work/$2.$what" 2>> "$work/$2.log"
  done
  mv "$work/$2.dump-dom" "$work/$2.dom"
}

echo "1..9"

# the README's job: compute's primes, two workers
cd "$work" || exit 1
mkdir out
"$taskrun" -q -j 2 -c "$(dirname "$0")/../conf/compute.ini" --report out/run.html > /dev/null
check /report/compute-written test -s out/run.html
check /report/no-file-left-beside-it test "$(ls -A out)" = run.html
browse "$work/out/run.html" compute
lanes=$(grep -o 'class="lane"' compute.dom | wc -l)
check /report/compute-one-lane-per-worker test "$lanes" -eq 2
check /report/compute-script-ran grep -q 'data-ready="yes"' compute.dom
check /report/compute-no-console-message sh -c "! grep ':CONSOLE' compute.log"

# three workers, a task that sleeps longest, one that crashes its worker
cat > slow.ini <<INI
[taskrun]
plugin = $testkit
workers = 3
[testkit]
tasks = 12
op = sleepecho:20:r%n
bad_task = 7
bad_op = sleepecho:400:slow
quiet = yes
INI
"$taskrun" -q -c slow.ini --report slow.html > /dev/null
browse "$work/slow.html" slow
lanes=$(grep -o 'class="lane"' slow.dom | wc -l)
first=$(grep -o '<tr class="slow-task"><td>[0-9]*</td><td>[^<]*' slow.dom | head -1)
check /report/one-lane-per-worker-of-three test "$lanes" -eq 3
check /report/slowest-task-first test "$first" = '<tr class="slow-task"><td>7</td><td>sleepecho:400:slow'
check /report/slow-no-console-message sh -c "! grep ':CONSOLE' slow.log && grep -q 'data-ready=\"yes\"' slow.dom"

sed -e 's/bad_op = .*/bad_op = crash/' slow.ini > crash.ini
"$taskrun" -q -c crash.ini --report crash.html > /dev/null 2>&1
browse "$work/crash.html" crash
check /report/death-drawn grep -q '<rect class="died"' crash.dom
exit $failed
