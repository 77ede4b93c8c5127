# The story on the second layout, the OpenZFS Root-on-ZFS guide's (sourced by story.sh, which
# defines say, run, fail, pass, next, listing, $stage and $root): bpool/BOOT/<name> holds /boot
# and GRUB's directory; rpool/home and rpool/var/log are data outside the checkpoints.
LOG=/var/log/apt-clone-story.log
boot_is() { [ "$(findmnt -n -o SOURCE /boot)" = "$1" ] || fail "/boot is $(findmnt -n -o SOURCE /boot), not $1"; }
case $stage in
1)
    [ "$root" = rpool/ROOT/rootfs-nmu-000 ] || fail "first boot is $root"
    boot_is bpool/BOOT/rootfs-nmu-000
    run apt-get install -y /opt/apt-clone/apt-clone-zfs.deb || fail "apt-get install apt-clone-zfs.deb"
    grep -q 'source "${prefix}/apt-clone.cfg"' /boot/grub/grub.cfg || fail "grub.cfg does not read the checkpoint menu"
    echo 'deb [trusted=yes] copy:/srv/apt-clone-repo/reboot ./' > /etc/apt/sources.list.d/apt-clone-sandbox-reboot.list
    echo "logged before the upgrade" >> $LOG
    out=$(apt-clone check 2>&1); echo "$out" > /dev/ttyS0
    echo "$out" | grep -q "GRUB's directory is inside checkpoint 'rootfs-nmu-000'" || fail "check does not see GRUB inside the checkpoint"
    echo "$out" | grep -q "/var/log is on rpool/var/log, outside the checkpoints" || fail "check does not see rpool/var/log"
    echo "$out" | grep -qF "counts a trial's tries ([trial] tries) in /boot/efi/apt-clone/grubenv" || fail "check does not count trials on the ESP"
    pass "bpool layout: apt installed the package; check reports GRUB inside rootfs-nmu-000, rpool/var/log outside, trials counted on the ESP"
    next 2
    run apt-clone -y -s dist-upgrade --then reboot || fail "dist-upgrade"
    ;;
2)
    [ "$root" = rpool/ROOT/rootfs-nmu-001 ] || fail "the trial boot booted $root"
    boot_is bpool/BOOT/rootfs-nmu-001
    listing || fail "apt-clone -l"
    echo "$listed" | grep -q '^o o rootfs-nmu-001' || fail "after a healthy trial boot rootfs-nmu-001 is not active and current"
    grep -q "logged before the upgrade" $LOG || fail "the log line is gone"
    [ "$(findmnt -n -o FSTYPE /boot/efi)" = vfat ] || fail "the ESP is not mounted on the trial's own /boot"
    grub-editenv /boot/efi/apt-clone/grubenv list | grep -q '^apt_clone_trial=.' && fail "the committed trial is still armed on the ESP"
    pass "trial boot of rootfs-nmu-001 committed, its own /boot mounted (the ESP on it), the log line kept"
    apt-clone -y -r rootfs-nmu-000 > /dev/ttyS0 2>&1; rc=$?
    [ $rc = 3 ] || fail "-r of GRUB's home exited $rc, not 3"
    run apt-clone -y share-grub || fail "share-grub"
    [ "$(findmnt -n -o SOURCE /boot/grub)" = bpool/grub ] || fail "/boot/grub is not bpool/grub"
    run apt-clone -y -r rootfs-nmu-000 || fail "destroy rootfs-nmu-000 after share-grub"
    run zfs list -t all -o name,origin,canmount,mountpoint -r rpool bpool
    pass "-r of GRUB's home refused (exit 3); share-grub moved GRUB to bpool/grub; rootfs-nmu-000 destroyed"
    next 3
    systemctl reboot
    ;;
3)
    [ "$root" = rpool/ROOT/rootfs-nmu-001 ] || fail "after destroying rootfs-nmu-000 we run $root"
    boot_is bpool/BOOT/rootfs-nmu-001
    [ "$(findmnt -n -o SOURCE /boot/grub)" = bpool/grub ] || fail "/boot/grub is not bpool/grub after a reboot"
    grep -q "logged before the upgrade" $LOG || fail "the log line is gone"
    pass "GRUB boots from bpool/grub; rootfs-nmu-001 with its /boot; the log line kept"
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
    [ "$root" = rpool/ROOT/rootfs-nmu-001 ] || fail "after the trial that panicked we run $root"
    listing || fail "apt-clone -l"
    echo "$listed" | grep -q '^o o rootfs-nmu-001' || fail "the default moved after a trial that panicked"
    echo "$listed" | grep 'trial-panic' | grep -q 'BAD' || fail "the trial that never came up is not marked bad"
    env=$(grub-editenv /boot/efi/apt-clone/grubenv list); echo "$env" > /dev/ttyS0
    echo "$env" | grep -q '^apt_clone_trial=.' && fail "the trial is still armed on the ESP"
    pass "the trial of trial-panic panicked, GRUB spent its try on the ESP and came back to rootfs-nmu-001 by itself, marked bad"
    pass "the bpool story is complete"
    say "RESULT=PASS"
    next done
    systemctl poweroff
    ;;
*)
    systemctl poweroff
    ;;
esac
