#!/bin/sh
# Install the Debian packages a make target needs, and nothing that could harm the host.
#
#   install-debian-deps.sh deb    what building the package needs on the host: debootstrap and
#                                 dpkg-dev (the build itself runs in a clean chroot)
#   install-debian-deps.sh        what the demo and the tests need (the sandbox's ZFS, debootstrap,
#                                 GRUB's tools, python3-apt, ...)
#
# Idempotent: only missing packages are installed. Never on a host's boot stack:
# - where kernel OpenZFS is present (zfsutils-linux, zfs-dkms or zfs-initramfs installed, or the
#   zfs module loaded) zfs-fuse is never installed: the sandbox uses kernel OpenZFS with its own
#   file-backed pools (installing zfs-fuse there would remove zfsutils-linux and zfs-initramfs);
# - apt's plan is read first (apt-get -s): one that removes a package, or that changes an
#   installed ZFS, GRUB, kernel or initramfs package, is refused in one line and nothing is done;
# - the package build's list holds no such package at all.
# APT_CLONE_DEPS_EXTRA: more packages to ask for (the tests of this script).
set -eu
mode=${1:-sandbox}
case $mode in
    deb) PKGS="debootstrap dpkg-dev" ;;
    sandbox) PKGS="zfs-fuse debootstrap apt-utils dpkg-dev grub-common python3 python3-apt python3-venv python3-pip util-linux mount fuse3 systemd" ;;
    *) echo "install-debian-deps: unknown target '$mode' (deb, or nothing: the demo and the tests)" >&2; exit 2 ;;
esac
PKGS="$PKGS ${APT_CLONE_DEPS_EXTRA:-}"
BOOT_STACK='^(zfs|zfsutils|libzfs|libzpool|libnvpair|libuutil|spl|grub|shim|linux-image|linux-headers|initramfs-tools|dracut|mokutil|efibootmgr)'

installed() {
    dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

kernel_zfs=
for p in zfsutils-linux zfs-dkms zfs-initramfs; do
    if installed "$p"; then kernel_zfs="$p installed"; fi
done
if [ -z "$kernel_zfs" ] && [ -d /sys/module/zfs ]; then kernel_zfs="the zfs module loaded"; fi

missing=""
for p in $PKGS; do
    if [ "$p" = zfs-fuse ] && [ -n "$kernel_zfs" ] && [ "$mode" = sandbox ]; then
        echo "install-debian-deps: kernel OpenZFS is here ($kernel_zfs): the sandbox uses it, not zfs-fuse" >&2
        continue
    fi
    if ! installed "$p"; then
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
# The package lists may be missing on a fresh machine: apt-get -s would then find nothing.
# shellcheck disable=SC2086
if ! apt-get -s -q install --no-install-recommends $missing > /dev/null 2>&1; then
    apt-get update -q
fi
# shellcheck disable=SC2086
plan=$(apt-get -s -q install --no-install-recommends $missing 2>&1) || {
    why=$(echo "$plan" | grep '^E: ' | head -n 1)
    echo "install-debian-deps: apt cannot install$missing (${why:-apt-get -s install says why}): nothing was done" >&2
    exit 1
}
removed=$(echo "$plan" | sed -n 's/^Remv \([^ ]*\).*/\1/p' | tr '\n' ' ')
if [ -n "$removed" ]; then
    echo "install-debian-deps: installing$missing would remove ${removed% }: refused, nothing was done" >&2
    exit 1
fi
# An upgrade shows the installed version in brackets: "Inst pkg [old] (new ...)".
touched=$(echo "$plan" | sed -n 's/^Inst \([^ ]*\) \[.*/\1/p' | grep -E "$BOOT_STACK" | tr '\n' ' ' || true)
if [ -n "$touched" ]; then
    echo "install-debian-deps: installing$missing would upgrade ${touched% } (the boot stack): refused, nothing was done" >&2
    exit 1
fi
if [ "$mode" = deb ]; then
    new=$(echo "$plan" | sed -n 's/^Inst \([^ ]*\).*/\1/p' | grep -E "$BOOT_STACK" | tr '\n' ' ' || true)
    if [ -n "$new" ]; then
        echo "install-debian-deps: building the package would install ${new% }: refused, nothing was done" >&2
        exit 1
    fi
fi
# shellcheck disable=SC2086
apt-get install -y -q --no-remove --no-install-recommends $missing
