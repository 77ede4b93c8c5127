#!/bin/sh
# make test: the host suite, the package's tests, then the VM lane (SKIP_VM=1: no lane).
# The lane's cached stages that start no VM (the kernel modules build, the guest's and the
# target's trees: minutes on a fresh machine, nothing once cached) are built beside the host
# suite, which needs neither; their output is printed when they are done. Ctrl-C stops both.
set -u
VENV=${VENV:-.venv}
PY=$VENV/bin/python
MAKE=${MAKE:-make}
prep=
if [ "${SKIP_VM:-0}" != 1 ]; then
    log=$(mktemp /tmp/apt-clone-vm-prepare.XXXXXX)
    # In a session of its own (a background job of sh ignores SIGINT): a Ctrl-C or SIGTERM of
    # make test ends it with its children through the trap below.
    setsid -w "$PY" vm/lane.py --prepare >"$log" 2>&1 &
    prep=$!
    trap 'kill -TERM "-$prep" 2>/dev/null; rm -f "$log"; exit 130' INT TERM
fi
status=0
"$PY" -m pytest -q tests --ignore=tests/package || status=$?
if [ "$status" = 0 ]; then
    "$MAKE" test-deb || status=$?
fi
if [ -n "$prep" ]; then
    prepared=0
    wait "$prep" || prepared=$?
    sed 's/^/vm lane (beside the host suite): /' "$log"
    rm -f "$log"
    if [ "$status" = 0 ] && [ "$prepared" = 0 ]; then
        "$MAKE" test-vm || status=$?
    elif [ "$status" = 0 ]; then
        status=$prepared
    fi
fi
exit "$status"
