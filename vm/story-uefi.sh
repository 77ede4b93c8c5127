# The story on the second layout, the OpenZFS guide's UEFI install under OVMF (sourced by story.sh,
# which defines say, run, fail, pass, next, listing, $stage and $root): shim-signed GRUB whose
# ESP stub names bpool/BOOT/<name>/grub, bpool/BOOT/<name> holding /boot, rpool encrypted (its
# key in a file the initramfs holds); rpool/home and rpool/var/log are data outside the checkpoints.
LOG=/var/log/apt-clone-story.log
boot_is() { [ "$(findmnt -n -o SOURCE /boot)" = "$1" ] || fail "/boot is $(findmnt -n -o SOURCE /boot), not $1"; }
# Every file of the ESP with its checksum: what the firmware boots, byte for byte.
esp_sums() { (cd /boot/efi && find . -type f | LC_ALL=C sort | xargs -d '\n' sha256sum); }
case $stage in
1)
    [ "$root" = rpool/ROOT/rootfs-nmu-000 ] || fail "first boot is $root"
    [ -d /sys/firmware/efi ] || fail "not booted by UEFI firmware"
    boot_is bpool/BOOT/rootfs-nmu-000
    [ "$(zfs get -H -o value encryptionroot rpool/ROOT/rootfs-nmu-000)" = rpool ] || fail "the root is not encrypted"
    run apt-get install -y /opt/apt-clone/apt-clone-zfs.deb || fail "apt-get install apt-clone-zfs.deb"
    grep -q 'source "${prefix}/apt-clone.cfg"' /boot/grub/grub.cfg || fail "grub.cfg does not read the checkpoint menu"
    echo 'deb [trusted=yes] copy:/srv/apt-clone-repo/reboot ./' > /etc/apt/sources.list.d/apt-clone-sandbox-reboot.list
    echo "logged before the upgrade" >> $LOG
    out=$(apt-clone check 2>&1); echo "$out" > /dev/ttyS0
    echo "$out" | grep -q "GRUB's directory is inside checkpoint 'rootfs-nmu-000'" || fail "check does not see GRUB inside the checkpoint"
    echo "$out" | grep -qF "EFI/debian/grub.cfg reads GRUB's directory from /BOOT/rootfs-nmu-000@/grub" || fail "check does not read the ESP's stub"
    echo "$out" | grep -q "the root is encrypted (encryption root rpool" || fail "check does not report the encryption root"
    echo "$out" | grep -q "/var/log is on rpool/var/log, outside the checkpoints" || fail "check does not see rpool/var/log"
    echo "$out" | grep -qF "counts a trial's tries ([trial] tries) in /boot/efi/apt-clone/grubenv" || fail "check does not count trials on the ESP"
    pass "UEFI layout: apt installed the package; check reads the stub naming rootfs-nmu-000, the encryption root, rpool/var/log outside, trials counted on the ESP"
    next 2
    run apt-clone -y -s dist-upgrade --then reboot || fail "dist-upgrade"
    ;;
2)
    [ "$root" = rpool/ROOT/rootfs-nmu-001 ] || fail "the trial boot booted $root"
    boot_is bpool/BOOT/rootfs-nmu-001
    listing || fail "apt-clone -l"
    echo "$listed" | grep -q '^o o rootfs-nmu-001' || fail "after a healthy trial boot rootfs-nmu-001 is not active and current"
    grep -q "logged before the upgrade" $LOG || fail "the log line is gone"
    [ "$(zfs get -H -o value encryptionroot rpool/ROOT/rootfs-nmu-001)" = rpool ] || fail "the checkpoint left the encryption root"
    [ "$(findmnt -n -o FSTYPE /boot/efi)" = vfat ] || fail "the ESP is not mounted on the trial's own /boot"
    grub-editenv /boot/efi/apt-clone/grubenv list | grep -q '^apt_clone_trial=.' && fail "the committed trial is still armed on the ESP"
    pass "trial boot of the encrypted clone rootfs-nmu-001 committed, its own /boot mounted (the ESP on it), the log line kept"
    apt-clone -y -r rootfs-nmu-000 > /dev/ttyS0 2>&1; rc=$?
    [ $rc = 3 ] || fail "-r of GRUB's home exited $rc, not 3"
    run apt-clone -y share-grub || fail "share-grub"
    [ "$(findmnt -n -o SOURCE /boot/grub)" = bpool/grub ] || fail "/boot/grub is not bpool/grub"
    grep -qF "'/grub@" /boot/efi/EFI/debian/grub.cfg || fail "the stub does not name bpool/grub: $(cat /boot/efi/EFI/debian/grub.cfg)"
    run apt-clone -y -r rootfs-nmu-000 || fail "destroy rootfs-nmu-000 after share-grub"
    pass "-r of GRUB's home refused (exit 3); share-grub moved GRUB to bpool/grub and the stub names it; rootfs-nmu-000 destroyed"
    # A GRUB upgrade in a clone (the stand-in grub-efi-amd64, whose postinst runs grub-install as
    # the real one's does): the ESP is untouched until the clone is activated.
    echo 'deb [trusted=yes] copy:/srv/apt-clone-repo/uefi ./' > /etc/apt/sources.list.d/apt-clone-sandbox-uefi.list
    before=$(esp_sums)
    run apt-clone -y -s install grub-efi-amd64 --then nothing || fail "GRUB upgrade in a clone"
    [ "$(esp_sums)" = "$before" ] || fail "the GRUB upgrade in the clone changed the live ESP"
    [ "$(zfs get -H -o value org.aptclone:efi-update rpool/ROOT/rootfs-nmu-002)" = grub-efi-amd64 ] || fail "the clone is not marked"
    [ -e /boot/grub/x86_64-efi/aptclonevm.mod ] && fail "the clone's grub-install reached GRUB's directory"
    run apt-clone -y -r rootfs-nmu-002 || fail "destroy the clone with the GRUB upgrade"
    [ "$(esp_sums)" = "$before" ] || fail "the ESP is not byte for byte as before after -r of the clone"
    pass "a GRUB upgrade in the clone rootfs-nmu-002 left the ESP byte for byte as it was, also after its -r"
    run apt-clone -y -s install grub-efi-amd64 --then activate || fail "GRUB upgrade in a clone, activated"
    [ -e /boot/grub/x86_64-efi/aptclonevm.mod ] || fail "activating the clone did not run its grub-install into GRUB's directory"
    grep -qF "'/grub@" /boot/efi/EFI/debian/grub.cfg || fail "the stub moved: $(cat /boot/efi/EFI/debian/grub.cfg)"
    [ "$(zfs get -H -o value org.aptclone:efi-update rpool/ROOT/rootfs-nmu-003)" = - ] || fail "the activated clone is still marked"
    pass "activating rootfs-nmu-003 ran its grub-install (the upgraded GRUB in bpool/grub, the stub unchanged)"
    next 3
    systemctl reboot
    ;;
3)
    [ "$root" = rpool/ROOT/rootfs-nmu-003 ] || fail "after activating the GRUB upgrade we run $root"
    boot_is bpool/BOOT/rootfs-nmu-003
    [ "$(findmnt -n -o SOURCE /boot/grub)" = bpool/grub ] || fail "/boot/grub is not bpool/grub after a reboot"
    [ "$(dpkg-query -W -f '${Version}' grub-efi-amd64)" = 2.99+ac1 ] || fail "grub-efi-amd64 is not the upgrade"
    grep -q "logged before the upgrade" $LOG || fail "the log line is gone"
    pass "the upgraded GRUB boots rootfs-nmu-003 from bpool/grub; the log line kept"
    # grubenv is on ZFS (bpool/grub), which GRUB cannot write: a trial that panics before userspace
    # comes back by itself only because GRUB counts its try on the ESP.
    apt-clone -y create --name trial-panic --title "panics before userspace" > /dev/ttyS0 || fail "create trial-panic"
    mkdir -p /mnt/broken
    mount -t zfs -o zfsutil rpool/ROOT/trial-panic /mnt/broken || fail "mount trial-panic"
    rm -f /mnt/broken/usr/lib/systemd/systemd /mnt/broken/usr/sbin/init /mnt/broken/usr/bin/sh /mnt/broken/usr/bin/dash
    umount /mnt/broken
    out=$(apt-clone -y activate trial-panic --once 2>&1) || fail "activate trial-panic --once: $out"
    echo "$out" > /dev/ttyS0
    echo "$out" | grep -q "one try counted by GRUB in /boot/efi/apt-clone/grubenv" || fail "the trial's try is not counted on the ESP"
    next 4
    systemctl reboot
    ;;
4)
    [ "$root" = rpool/ROOT/rootfs-nmu-003 ] || fail "after the trial that panicked we run $root"
    listing || fail "apt-clone -l"
    echo "$listed" | grep -q '^o o rootfs-nmu-003' || fail "the default moved after a trial that panicked"
    echo "$listed" | grep 'trial-panic' | grep -q 'BAD' || fail "the trial that never came up is not marked bad"
    env=$(grub-editenv /boot/efi/apt-clone/grubenv list); echo "$env" > /dev/ttyS0
    echo "$env" | grep -q '^apt_clone_trial=.' && fail "the trial is still armed on the ESP"
    pass "the trial of trial-panic panicked, GRUB spent its try on the ESP and came back to rootfs-nmu-003 by itself, marked bad"
    pass "the UEFI story is complete"
    say "RESULT=PASS"
    next done
    systemctl poweroff
    ;;
*)
    systemctl poweroff
    ;;
esac
