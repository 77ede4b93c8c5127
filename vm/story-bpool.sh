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
    pass "bpool layout: apt installed the package; check reports GRUB inside rootfs-nmu-000 and rpool/var/log outside"
    next 2
    run apt-clone -y -s dist-upgrade --then reboot || fail "dist-upgrade"
    ;;
2)
    [ "$root" = rpool/ROOT/rootfs-nmu-001 ] || fail "the trial boot booted $root"
    boot_is bpool/BOOT/rootfs-nmu-001
    listing || fail "apt-clone -l"
    echo "$listed" | grep -q '^o o rootfs-nmu-001' || fail "after a healthy trial boot rootfs-nmu-001 is not active and current"
    grep -q "logged before the upgrade" $LOG || fail "the log line is gone"
    pass "trial boot of rootfs-nmu-001 committed, its own /boot mounted, the log line kept"
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
    next 4
    systemctl reboot
    ;;
4)
    [ "$root" = rpool/ROOT/rootfs-nmu-001 ] || fail "last boot is $root"
    run apt-clone -l
    pass "two more reboots work; the bpool story is complete"
    say "RESULT=PASS"
    next done
    systemctl poweroff
    ;;
*)
    systemctl poweroff
    ;;
esac
