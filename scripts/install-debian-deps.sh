#!/bin/sh
# Install the Debian packages apt-clone's development, demo and tests need.
# Idempotent: only missing packages are installed.
set -eu
PKGS="zfs-fuse debootstrap apt-utils dpkg-dev grub-common python3 python3-apt python3-venv python3-pip util-linux mount fuse3 systemd"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-debian-deps: need root to install:$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# zfs-fuse lives in main on Debian 12; make sure the lists are there.
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
