#!/bin/bash
# Build the OpenZFS kernel modules for a Debian 13 kernel in a trixie chroot (zfs-dkms builds
# them in its postinst), and keep the kernel, its modules and the zfs/spl .ko files.
# Usage: build-modules.sh CACHE_DIR MIRROR
set -euo pipefail
CACHE=$1
MIRROR=${2:-http://deb.debian.org/debian}
BUILD=$CACHE/build-chroot
OUT=$CACHE/kernel
mkdir -p "$CACHE"
if [ -f "$OUT/.done" ]; then exit 0; fi
# A build that was killed leaves its chroot's mounts (a bind of the host's /dev among them):
# detach them before removing it, and never remove across a mount.
{ findmnt -rn -o TARGET | grep -F "$BUILD/" || true; } | sort -r | while read -r m; do umount -l "$m"; done
rm -rf --one-file-system "$BUILD" "$OUT"
debootstrap --variant=minbase --components=main,contrib trixie "$BUILD" "$MIRROR" >/dev/null
cleanup() { for m in dev/pts dev sys proc; do umount -l "$BUILD/$m" 2>/dev/null || true; done; }
trap cleanup EXIT
mount -t proc proc "$BUILD/proc"; mount --bind /sys "$BUILD/sys"; mount --bind /dev "$BUILD/dev"; mount --bind /dev/pts "$BUILD/dev/pts"
printf '#!/bin/sh\nexit 101\n' > "$BUILD/usr/sbin/policy-rc.d"; chmod +x "$BUILD/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$BUILD/etc/resolv.conf"
# The kernel is installed for its image and modules only: no initramfs for it here.
chroot "$BUILD" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs
ln -s /bin/true "$BUILD/usr/sbin/update-initramfs"
chroot "$BUILD" env DEBIAN_FRONTEND=noninteractive apt-get -q -o Dpkg::Use-Pty=0 install -y --no-install-recommends \
    linux-image-amd64 linux-headers-amd64 zfs-dkms >/dev/null
K=$(basename "$(ls -d "$BUILD"/lib/modules/*/updates/dkms | head -n1 | sed 's|/updates/dkms||')")
mkdir -p "$OUT/modules"
cp "$BUILD/boot/vmlinuz-$K" "$OUT/vmlinuz"
cp -a "$BUILD/lib/modules/$K" "$OUT/modules/"
mkdir -p "$OUT/debs"
cp "$BUILD"/var/cache/apt/archives/linux-image-*"$K"*.deb "$OUT/debs/" 2>/dev/null || true
echo "$K" > "$OUT/version"
touch "$OUT/.done"
cleanup
rm -rf --one-file-system "$BUILD"
