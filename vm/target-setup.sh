#!/bin/bash
# Make the tree of a bootable ZFS-root Debian 13 for the boot lane: the guest userland plus
# kernel, zfs-initramfs, GRUB, systemd and the sandbox's local repository (apt-clone itself is
# added by the installer VM, so that this tarball stays cached across changes of the project).
# GRUB for both layouts: grub-pc-bin for the BIOS one's grub-install --target=i386-pc, and what
# the OpenZFS guide's UEFI install has (grub-efi-amd64, shim-signed, grub-efi-amd64-signed).
# The UEFI layout's rpool is encrypted with a key file (keyformat=passphrase): /etc/zfs/rpool.key,
# which an initramfs hook puts into the initramfs, so that the root unlocks with no one typing.
# Usage: target-setup.sh GUEST_DIR KERNEL_DIR OUT_TAR REPO_DIR
set -euo pipefail
GUEST=$1 KERNEL=$2 OUT=$3 REPO=$4
K=$(cat "$KERNEL/version")
T=$(mktemp -d /var/tmp/apt-clone-target.XXXXXX)
cleanup() { for m in dev/pts dev sys proc; do umount -l "$T/$m" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
cp -a "$GUEST/." "$T/"
rm -f "$T"/.done* "$T/.debootstrapped"
mount -t proc proc "$T/proc"; mount --bind /sys "$T/sys"; mount --bind /dev "$T/dev"; mount --bind /dev/pts "$T/dev/pts"
printf '#!/bin/sh\nexit 101\n' > "$T/usr/sbin/policy-rc.d"; chmod +x "$T/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$T/etc/resolv.conf"
# A package that stands for the zfs modules built by DKMS on the host (already in /lib/modules).
D=$(mktemp -d); mkdir -p "$D/DEBIAN"
printf 'Package: apt-clone-vm-zfs-modules\nVersion: 1.0\nArchitecture: all\nMaintainer: apt-clone <dev@apt-clone.invalid>\nProvides: zfs-modules\nDescription: zfs modules built by zfs-dkms for %s\n' "$K" > "$D/DEBIAN/control"
dpkg-deb --root-owner-group --build "$D" "$T/tmp/zfs-modules.deb" >/dev/null; rm -rf "$D"
KDEB=$(basename "$(ls "$KERNEL"/debs/linux-image-*.deb | head -n1)")
cp "$KERNEL/debs/$KDEB" "$T/tmp/"
chroot "$T" apt-get -q update >/dev/null
chroot "$T" env DEBIAN_FRONTEND=noninteractive apt-get -q -o Dpkg::Use-Pty=0 install -y --no-install-recommends \
    /tmp/zfs-modules.deb "/tmp/$KDEB" initramfs-tools zfs-initramfs systemd-sysv busybox dosfstools \
    grub-pc-bin grub-efi-amd64 grub-efi-amd64-signed shim-signed efibootmgr >/dev/null
rm -f "$T/tmp/zfs-modules.deb" "$T/tmp/$KDEB"
cat > "$T/etc/default/grub" <<'GRUB'
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0,115200 panic=5 mitigations=off"
GRUB_TERMINAL="serial console"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB
# No fsck pass for GRUB's partition: a second or two a boot under TCG, for a disk that lives one lane run.
echo 'LABEL=GRUB /boot/grub ext2 defaults 0 0' > "$T/etc/fstab"
echo apt-clone-vm > "$T/etc/hostname"
# Under TCG every unit costs seconds a boot: what a test machine without network, screen or
# logins does not need stays off (the story runs as a unit; its output goes to the console).
# The initramfs imports rpool and loads zfs.ko; zfs-load-module and zfs-import-cache would only do
# it again, and both pull in systemd-udev-settle, which waits 7-8 s a boot under TCG; no NFS or SMB
# shares here (zfs-share), no zvols (zfs-volume-wait), and no use for huge pages, POSIX message
# queues, debugfs, tracefs, configfs, FUSE or pstore.
chroot "$T" systemctl mask systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer getty.target \
    e2scrub_reap.service e2scrub_all.timer fstrim.timer man-db.timer dpkg-db-backup.timer \
    systemd-binfmt.service proc-sys-fs-binfmt_misc.automount modprobe@drm.service zfs-zed.service \
    zfs-load-module.service zfs-import-cache.service zfs-import-scan.service zfs-share.service \
    systemd-udev-settle.service zfs-volume-wait.service zfs-volumes.target dev-hugepages.mount \
    dev-mqueue.mount sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount \
    sys-fs-fuse-connections.mount modprobe@configfs.service modprobe@fuse.service \
    modprobe@efi_pstore.service >/dev/null 2>&1 || true
# Generators run at every boot before any unit starts (a process each, seconds in all under TCG):
# no GPT auto-mounts, SSH over vsock, TPM, hibernation, gettys or SysV scripts here.
mkdir -p "$T/etc/systemd/system-generators"
for g in systemd-gpt-auto-generator systemd-ssh-generator systemd-tpm2-generator systemd-hibernate-resume-generator \
    systemd-getty-generator systemd-sysv-generator systemd-rc-local-generator; do
    ln -sf /dev/null "$T/etc/systemd/system-generators/$g"
done
chroot "$T" passwd -d root >/dev/null
# Nor the drivers udev would load for the emulated PC's own hardware (floppy and IDE controllers,
# PC speaker, SMBus, KVM and CPU frequency drivers): a second or more of each boot under TCG.
cat > "$T/etc/modprobe.d/apt-clone-vm.conf" <<'MODPROBE'
blacklist floppy
blacklist ata_piix
blacklist pata_acpi
blacklist ata_generic
blacklist pcspkr
blacklist i2c_piix4
blacklist kvm_amd
blacklist kvm_intel
blacklist kvm
blacklist powernow_k8
blacklist acpi_cpufreq
blacklist psmouse
blacklist serio_raw
MODPROBE
printf '%s' "apt-clone VM lane passphrase" > "$T/etc/zfs/rpool.key"; chmod 0400 "$T/etc/zfs/rpool.key"
echo UMASK=0077 > "$T/etc/initramfs-tools/conf.d/umask.conf"
cat > "$T/etc/initramfs-tools/hooks/apt-clone-vm-zfs-key" <<'HOOK'
#!/bin/sh
case "$1" in prereqs) echo zfs; exit 0 ;; esac
mkdir -p "$DESTDIR/etc/zfs"
cp -p /etc/zfs/rpool.key "$DESTDIR/etc/zfs/"
HOOK
chmod 0755 "$T/etc/initramfs-tools/hooks/apt-clone-vm-zfs-key"
# A small initramfs (virtio and zfs only, not every driver): under TCG each megabyte costs boot time.
printf 'MODULES=list\n' > "$T/etc/initramfs-tools/conf.d/apt-clone-vm.conf"
printf 'virtio_pci\nvirtio_blk\n' >> "$T/etc/initramfs-tools/modules"
# Nor udev's hardware database (13.5 MB of the 49 MB unpacked): device descriptions and keymaps,
# nothing that finding and importing rpool needs.
cat > "$T/etc/initramfs-tools/hooks/apt-clone-vm-no-hwdb" <<'HOOK'
#!/bin/sh
case "$1" in prereqs) echo udev; exit 0 ;; esac
rm -f "$DESTDIR/usr/lib/udev/hwdb.bin" "$DESTDIR/etc/udev/hwdb.bin"
HOOK
chmod 0755 "$T/etc/initramfs-tools/hooks/apt-clone-vm-no-hwdb"
# zfs.ko and spl.ko as DKMS left them are xz-compressed: the kernel's xz under TCG costs ~30 s a
# boot. Stored plain (the initramfs itself is compressed anyway).
python3 - "$T/lib/modules/$K/updates" <<'PY'
import lzma, pathlib, sys
for ko in pathlib.Path(sys.argv[1]).rglob("*.ko.xz"):
    ko.with_suffix("").write_bytes(lzma.decompress(ko.read_bytes()))
    ko.unlink()
PY
chroot "$T" depmod "$K"
chroot "$T" update-initramfs -u -k "$K" >/dev/null 2>&1
ls -l "$T/boot/initrd.img-$K"
for m in dev/pts dev sys proc; do umount -l "$T/$m"; done
# The sandbox's local repository (ac-hello, ac-kernel that asks for a reboot, ...), sources pointing at it only.
PYTHONPATH="$REPO" python3 -c "import sys; from tests.sandbox import rootfs; rootfs.customise(sys.argv[1], __import__('apt_clone.runner', fromlist=['DEFAULT_RUNNER']).DEFAULT_RUNNER)" "$T"
rm -f "$T/usr/sbin/policy-rc.d"
# The tree is as updated as its /usr: the first boot need not rebuild the linker cache and the
# journal catalog (ldconfig.service and friends run when /usr is newer than /etc/.updated).
chroot "$T" /usr/lib/systemd/systemd-update-done
echo "nameserver 10.0.2.3" > "$T/etc/resolv.conf"
tar --numeric-owner -C "$T" -cf "$OUT.part" .
mv "$OUT.part" "$OUT"
