#!/bin/sh
# The seed's story on a real ZFS root booted by GRUB, one stage per boot. The stage number is a
# property of the pool, which every checkpoint sees. Results go to the serial console.
# A unit without a terminal: debconf would try dialog, readline and teletype before giving up.
export DEBIAN_FRONTEND=noninteractive
say() { echo "APT-CLONE-VM-STORY $* (up $(cut -d' ' -f1 /proc/uptime)s)" > /dev/ttyS0; }
run() { echo "# $*" > /dev/ttyS0; "$@" > /dev/ttyS0 2>&1; }
stage=$(zfs get -H -o value org.aptclone-vm:stage rpool)
root=$(findmnt -n -o SOURCE /)
next() { zfs set org.aptclone-vm:stage="$1" rpool; }
fail() { say "stage=$stage FAIL: $*"; run systemctl --no-pager --failed; run apt-clone -l; next failed; systemctl poweroff; exit 1; }
pass() { say "stage=$stage PASS: $*"; }
# apt-clone -l, shown on the console and kept in $listed (one run: each start costs seconds here).
listing() { echo "# apt-clone -l" > /dev/ttyS0; listed=$(apt-clone -l 2>&1); rc=$?; echo "$listed" > /dev/ttyS0; return $rc; }
say "stage=$stage booted=$root"
# The trial boots of the health stages are judged by apt-clone-trial.service and its deadline,
# never by the story.
case $root in */trial-*) say "a trial boot: apt-clone judges it"; exit 0 ;; esac
if [ "$(zfs get -H -o value org.aptclone-vm:layout rpool)" = uefi ]; then
    . /opt/apt-clone/vm/story-uefi.sh
    exit 0
fi
case $stage in
1)
    [ "$root" = rpool/ROOT/rootfs-nmu-000 ] || fail "first boot is $root"
    # The package as an admin gets it: apt installs it (its Depends are on the disk already), its
    # postinst runs update-grub, dh_installsystemd enabled the boot and trial units.
    run apt-get install -y /opt/apt-clone/apt-clone-zfs.deb || fail "apt-get install apt-clone-zfs.deb"
    grep -q 'source "${prefix}/apt-clone.cfg"' /boot/grub/grub.cfg || fail "grub.cfg does not read the checkpoint menu"
    grep -q 'set default="${saved_entry}"' /boot/grub/grub.cfg || fail "grub.cfg does not boot saved_entry"
    systemctl is-enabled apt-clone-boot.service apt-clone-trial.service > /dev/null || fail "units not enabled"
    pass "apt installed $(apt-clone --version); grub.cfg sources the checkpoint menu; the units are enabled"
    run apt-clone -l || fail "apt-clone -l"
    echo 'deb [trusted=yes] copy:/srv/apt-clone-repo/reboot ./' > /etc/apt/sources.list.d/apt-clone-sandbox-reboot.list
    pass "booted rootfs-nmu-000; apt-clone -y -s dist-upgrade --then reboot (ac-kernel asks for a reboot)"
    next 2
    run apt-clone -y -s dist-upgrade --then reboot || fail "dist-upgrade"
    ;;
2)
    [ "$root" = rpool/ROOT/rootfs-nmu-001 ] || fail "the trial boot booted $root"
    listing || fail "apt-clone -l"
    echo "$listed" | grep -q '^o o rootfs-nmu-001' || fail "after a healthy trial boot rootfs-nmu-001 is not active and current"
    [ "$(dpkg-query -W -f '${Version}' ac-kernel)" = 1.1 ] || fail "ac-kernel is not upgraded in rootfs-nmu-001"
    pass "trial boot of rootfs-nmu-001 committed; findmnt / and apt-clone -l agree"
    apt-clone -y create --title "made unbootable on purpose" > /dev/ttyS0 || fail create
    mkdir -p /mnt/broken
    mount -t zfs -o zfsutil rpool/ROOT/rootfs-nmu-002 /mnt/broken || fail "mount 002"
    # No init and no shell: the initramfs finds nothing to run and panics; panic=5 reboots.
    rm -f /mnt/broken/usr/lib/systemd/systemd /mnt/broken/usr/sbin/init /mnt/broken/usr/bin/sh /mnt/broken/usr/bin/dash
    umount /mnt/broken
    next 3
    # Two tries, counted by GRUB on its partition: the broken trial panics twice, then the default boots.
    sed -i 's/^# tries = 1$/tries = 2/' /etc/apt-clone/apt-clone.conf
    out=$(apt-clone -y activate rootfs-nmu-002 --once 2>&1) || fail "activate --once: $out"
    echo "$out" > /dev/ttyS0
    echo "$out" | grep -q "2 tries counted by GRUB" || fail "the trial's tries are not counted by GRUB"
    systemctl reboot
    ;;
3)
    [ "$root" = rpool/ROOT/rootfs-nmu-001 ] || fail "after the failed trial boot we run $root"
    listing || fail "apt-clone -l"
    echo "$listed" | grep -q '^o o rootfs-nmu-001' || fail "the default moved after a failed trial boot"
    env=$(grub-editenv /boot/grub/grubenv list); echo "$env" > /dev/ttyS0
    # (GRUB booted the trial twice, then the default; the verdict ended the trial in grubenv)
    echo "$env" | grep -q '^apt_clone_tries=1' && fail "GRUB left tries unspent"
    echo "$env" | grep -q '^apt_clone_trial=.' && fail "the trial is still armed in grubenv"
    echo "$listed" | grep 'rootfs-nmu-002' | grep -q 'BAD' || fail "the trial that never came up is not marked bad"
    pass "the unbootable trial of rootfs-nmu-002 (two tries, counted by GRUB) fell back to rootfs-nmu-001 by itself, marked bad"
    run apt-clone -y -r rootfs-nmu-000 || fail "destroy rootfs-nmu-000"
    run apt-clone -y -r rootfs-nmu-002 || fail "destroy rootfs-nmu-002"
    run zfs list -t all -o name,origin -r rpool
    # The APT hook on kernel OpenZFS: plain apt-get makes one titled checkpoint that records its
    # changes, and rolling back to it undoes them.
    count() { zfs list -H -o name -d 1 rpool/ROOT | wc -l; }
    before=$(count)
    out=$(apt-get install -y ac-extra 2>&1); rc=$?
    echo "$out" > /dev/ttyS0
    [ $rc -eq 0 ] || fail "apt-get install ac-extra (with the hook)"
    echo "$out" | grep -q "^apt-clone: Rollback Checkpoint rootfs-nmu-" || fail "the hook said nothing"
    [ "$(count)" -eq $((before + 1)) ] || fail "apt-get install made $(( $(count) - before )) checkpoints, not one"
    cp=$(apt-clone --json -l | python3 -c 'import json, sys; print(*[c["name"] for c in json.load(sys.stdin) if c["kind"] == "automatic"])')
    [ -n "$cp" ] || fail "no automatic checkpoint listed"
    shown=$(apt-clone show "$cp" 2>&1); echo "$shown" > /dev/ttyS0
    echo "$shown" | grep -q "apt-get install -y ac-extra" || fail "the title does not name the command"
    echo "$shown" | grep -q "ac-extra" || fail "show lists no change"
    run apt-clone -y rollback "$cp" || fail "apt-clone rollback $cp"
    dpkg-query -W -f '${Status}' ac-extra 2>/dev/null | grep -q " installed" && fail "ac-extra still installed after the rollback"
    [ "$(count)" -eq "$before" ] || fail "the rollback left $(count) checkpoints"
    pass "apt-get install ac-extra made one checkpoint ($cp) through the hook; rollback to it undid the install"
    # A trial whose required health check fails is marked bad and reboots into the default,
    # whatever the check prints (a tab, a terminal control) and whatever it leaves running
    # (a process holding its output: its verdict is its exit status, never waited for).
    apt-clone -y create --name trial-bad-check --title "a required health check fails" > /dev/ttyS0 || fail "create trial-bad-check"
    mkdir -p /mnt/trial
    mount -t zfs -o zfsutil rpool/ROOT/trial-bad-check /mnt/trial || fail "mount trial-bad-check"
    mkdir -p /mnt/trial/etc/apt-clone/health.d/required
    printf '#!/bin/sh\nsetsid sleep 3600 &\nprintf "the service under test\\tdoes not answer\\033[2J\\n" >&2\nexit 1\n' > /mnt/trial/etc/apt-clone/health.d/required/50-service
    chmod 755 /mnt/trial/etc/apt-clone/health.d/required/50-service
    umount /mnt/trial
    next 4
    run apt-clone -y activate trial-bad-check --once || fail "activate trial-bad-check --once"
    systemctl reboot
    ;;
4)
    [ "$root" = rpool/ROOT/rootfs-nmu-001 ] || fail "after the unhealthy trial we run $root"
    listing || fail "apt-clone -l"
    echo "$listed" | grep -q '^o o rootfs-nmu-001' || fail "the default moved after an unhealthy trial"
    echo "$listed" | grep 'trial-bad-check' | grep -q 'BAD' || fail "trial-bad-check is not marked bad"
    # (printf, not echo: dash's echo would turn the escaped \t back into a tab)
    shown=$(apt-clone show trial-bad-check); printf '%s\n' "$shown" > /dev/ttyS0
    printf '%s\n' "$shown" | grep -qF 'Bad:        unhealthy trial boot: 50-service: exit status 1: the service under test\tdoes not answer\x1b[2J' || fail "show does not say why, escaped"
    pass "a trial whose required health check failed (a tab and a terminal control in its output, a process left holding it) was marked bad and came back to rootfs-nmu-001 by itself"
    # A trial whose verdict is killed while its checks run (here the check SIGKILLs trial-commit)
    # stays armed: its deadline (short here: set in that checkpoint only) marks it bad and reboots
    # into the default, as for a trial that hangs before its verdict.
    apt-clone -y create --name trial-hang --title "its verdict is killed" > /dev/ttyS0 || fail "create trial-hang"
    mount -t zfs -o zfsutil rpool/ROOT/trial-hang /mnt/trial || fail "mount trial-hang"
    mkdir -p /mnt/trial/etc/apt-clone/health.d/required
    printf '#!/bin/sh\nkill -KILL $PPID\nexec sleep 3600\n' > /mnt/trial/etc/apt-clone/health.d/required/50-kill-verdict
    chmod 755 /mnt/trial/etc/apt-clone/health.d/required/50-kill-verdict
    printf '[trial]\ndeadline = 60\n' > /mnt/trial/etc/apt-clone/apt-clone.conf
    umount /mnt/trial
    next 5
    run apt-clone -y activate trial-hang --once || fail "activate trial-hang --once"
    systemctl reboot
    ;;
5)
    [ "$root" = rpool/ROOT/rootfs-nmu-001 ] || fail "after the hung trial we run $root"
    listing || fail "apt-clone -l"
    echo "$listed" | grep -q '^o o rootfs-nmu-001' || fail "the default moved after a hung trial"
    echo "$listed" | grep 'trial-hang' | grep -q 'BAD' || fail "trial-hang is not marked bad"
    apt-clone show trial-hang | grep -q "no verdict within 60 s of boot (a hang)" || fail "show does not say it reached no verdict"
    pass "a trial whose verdict was killed during its checks stayed armed, reached its deadline, was marked bad and came back to rootfs-nmu-001 by itself"
    pass "the story is complete"
    say "RESULT=PASS"
    next done
    systemctl poweroff
    ;;
*)
    systemctl poweroff
    ;;
esac
