#!/bin/sh
# make test: the host suite and the package's tests, with the VM lane beside them (SKIP_VM=1: no
# lane). The lane uses no host pool (its VMs run kernel OpenZFS on their own disks), so it runs
# whole beside the host suite, from the start (its cached stages first: minutes on a fresh
# machine); its output is printed when it is done. Ctrl-C stops both.
set -u
VENV=${VENV:-.venv}
PY=$VENV/bin/python
MAKE=${MAKE:-make}
lane=
status=0
if [ "${SKIP_VM:-0}" != 1 ]; then
    log=$(mktemp /tmp/apt-clone-vm-lane.XXXXXX)
    # In a session of its own (a background job of sh ignores SIGINT): a Ctrl-C or SIGTERM of
    # make test ends it with its children through the trap below.
    setsid -w "$PY" vm/lane.py >"$log" 2>&1 &
    lane=$!
    trap 'kill -TERM "-$lane" 2>/dev/null; rm -f "$log"; exit 130' INT TERM
fi
# The .deb of these sources, built once (the lane's deb stage waits for it on dist/.build.lock):
# test-deb and the lane then only read it.
"$PY" scripts/deb.py build-if-older || status=$?
if [ "$status" = 0 ]; then
    "$PY" -m pytest -q tests --ignore=tests/package || status=$?
fi
if [ "$status" = 0 ]; then
    "$MAKE" test-deb || status=$?
fi
if [ -n "$lane" ]; then
    ran=0
    wait "$lane" || ran=$?
    sed 's/^/vm lane (beside the host suite): /' "$log"
    rm -f "$log"
    if [ "$status" = 0 ]; then
        status=$ran
    fi
fi
exit "$status"
