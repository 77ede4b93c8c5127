#!/bin/bash
# The seed's story (apt-clone(8), Nexenta) played on a sandbox: a file-backed ZFS pool
# holding a debootstrapped Debian root with a local apt repository.
set -euo pipefail
SANDBOX=${1:-/var/tmp/apt-clone-demo}
cd "$(dirname "$0")/.."
PY=.venv/bin/python
AC=(.venv/bin/apt-clone)

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '\033[2m# %s\033[0m\n' "$*"; "$@"; }

step "Sandbox: a real Debian root on a real ZFS pool"
ROOT=$($PY -m tests.sandbox create --dir "$SANDBOX" | tail -n 1)
$PY -m tests.sandbox reset --dir "$SANDBOX" >/dev/null
POOL=$($PY -m tests.sandbox status --dir "$SANDBOX" | $PY -c 'import json,sys; print(json.load(sys.stdin)["pool"])')
AC+=(--root "$ROOT")
run zfs list -t all -r -o name,used,avail,refer,origin "$POOL"
run "${AC[@]}" -l

step "Example #2: a successful upgrade into a new checkpoint (-s), the running root untouched"
run "${AC[@]}" -y -s dist-upgrade
run "${AC[@]}" -l
run "${AC[@]}" show rootfs-nmu-001

step "Example #1: an upgrade from 'unstable' whose postinst fails is rolled back"
$PY -m tests.sandbox suite --enable unstable --dir "$SANDBOX" >/dev/null
zfs list -H -t all -r -o name,origin "$POOL" > /tmp/apt-clone-demo.before
run "${AC[@]}" -y dist-upgrade || echo "(apt-clone exited with status $?, as it should)"
zfs list -H -t all -r -o name,origin "$POOL" > /tmp/apt-clone-demo.after
if diff -u /tmp/apt-clone-demo.before /tmp/apt-clone-demo.after; then
    echo "zfs list is exactly as before the failed upgrade."
fi
$PY -m tests.sandbox suite --disable unstable --dir "$SANDBOX"

step "Activate the upgraded checkpoint and reboot into it"
run "${AC[@]}" -y -a rootfs-nmu-001
run "${AC[@]}" -l
run $PY -m tests.sandbox reboot --dir "$SANDBOX"
run "${AC[@]}" -l
run "${AC[@]}" diff rootfs-nmu-000 rootfs-nmu-001

step "Example #3: destroy the old checkpoint; rootfs-nmu-001 is promoted and keeps @initial"
run "${AC[@]}" -y -r rootfs-nmu-000
run "${AC[@]}" -l
run zfs list -t all -r -o name,used,avail,refer,origin "$POOL"

step "Done. The sandbox stays in $SANDBOX; remove it with: make demo-clean"
