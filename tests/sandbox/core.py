"""The sandbox: a file-backed pool holding a debootstrapped Debian root, laid out like a host.

Layout for sandbox directory DIR (pool names derived from DIR, so sandboxes coexist)::

    DIR/pool.img                 the pool's backing file (sparse)
    DIR/root                     the "booted" root: the checkpoint mounted there is current
    DIR/grub                     GRUB's directory (grubenv, apt-clone.cfg), bound at root/boot/grub,
                                 shared by every checkpoint as an ESP holding /boot/grub would be
    DIR/sandbox.json             what this tool made (pools, images, daemon it started)
    <pool>/ROOT                  the boot-environment container (mountpoint=none)
    <pool>/ROOT/rootfs-nmu-000   the first root, mountpoint=DIR/root canmount=noauto,
                                 snapshot @initial, title "<PRETTY_NAME>" kind initial
    <pool>/ROOT/rootfs-nmu-000/var     with --child var: a child dataset of the root
    <pool>-boot/BOOT/rootfs-nmu-000    with --bpool: /boot on a boot pool, DIR/bpool.img

Every root dataset has ``mountpoint=DIR/root canmount=noauto`` as ``mountpoint=/`` on a real
host; ``reboot`` mounts the one that boots next there (and its children and boot twin).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from apt_clone import model
from apt_clone.apt.execute import kill_processes_in
from apt_clone.boot import Bootloader, counter, grub
from apt_clone.engine.journal import Journal
from apt_clone.errors import OperationFailed, UsageError
from apt_clone.runner import DEFAULT_RUNNER, Runner
from apt_clone.system import ZFS_FSTYPES, dataset_mounted_at, mounts_under, read_mounts
from apt_clone.zfs import CliZfs, ZfsBackend, ZfsNotFound

from . import daemon, rootfs


class SandboxZfs(CliZfs):
    """The product's CLI backend plus what only the sandbox does: tear down whole trees and pools
    (with the same retry of zfs-fuse's "busy")."""

    def destroy_with_dependents(self, name: str) -> None:
        """``zfs destroy -r -R``: the dataset, its descendants and every clone of their snapshots."""
        self._run_retrying_busy(["zfs", "destroy", "-r", "-R", name])

    def destroy_pool(self, pool: str) -> None:
        """``zpool destroy -f``."""
        self._run_retrying_busy(["zpool", "destroy", "-f", pool])


STATE_FILE = "sandbox.json"
PRISTINE = "org.aptclone-sandbox:pristine"
"""On the first root's @initial: a token the fast reset knows the pristine snapshot by (it moves
with the snapshot when a clone is promoted; zfs-fuse's ``zfs get all`` has no guid)."""
FIRST_NAME = "rootfs-nmu-000"
DEFAULT_SIZE = "3G"
BOOT_POOL_SIZE = "256M"

Log = Callable[[str], None]


@dataclass(frozen=True)
class Sandbox:
    directory: str
    pool: str
    with_bpool: bool = False
    children: tuple[str, ...] = ()

    @property
    def image(self) -> str:
        return os.path.join(self.directory, "pool.img")

    @property
    def bpool(self) -> str | None:
        return f"{self.pool}-boot" if self.with_bpool else None

    @property
    def bpool_image(self) -> str:
        return os.path.join(self.directory, "bpool.img")

    @property
    def boot_container(self) -> str | None:
        return f"{self.bpool}/BOOT" if self.bpool else None

    @property
    def root(self) -> str:
        return os.path.join(self.directory, "root")

    @property
    def container(self) -> str:
        return f"{self.pool}/ROOT"

    @property
    def state_file(self) -> str:
        return os.path.join(self.directory, STATE_FILE)

    @property
    def pristine_stream(self) -> str:
        """A ``zfs send -R`` stream of the first root at @initial: ``reset`` receives it."""
        return os.path.join(self.directory, "pristine.zstream")

    @property
    def pristine_boot_stream(self) -> str:
        return os.path.join(self.directory, "pristine-boot.zstream")

    @property
    def grub_dir(self) -> str:
        """GRUB's directory, shared by every checkpoint (as an ESP holding /boot/grub would be)."""
        return os.path.join(self.directory, "grub")

    @property
    def first(self) -> str:
        return f"{self.container}/{FIRST_NAME}"

    def twin(self, dataset: str) -> str | None:
        """The boot-pool twin of a root checkpoint dataset."""
        return f"{self.boot_container}/{dataset.rsplit('/', 1)[1]}" if self.boot_container else None


def pool_name(directory: str) -> str:
    """A pool name derived from the directory: readable and unique per path."""
    real = os.path.realpath(directory)
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(real.rstrip("/")) or "root")[:24]
    digest = hashlib.sha1(real.encode()).hexdigest()[:6]
    return f"acsb-{base}-{digest}"


def sandbox_for(directory: str, *, bpool: bool | None = None, children: Sequence[str] | None = None) -> Sandbox:
    """The sandbox at ``directory``; its options come from its state file unless given."""
    real = os.path.realpath(directory)
    state = _load_state_at(os.path.join(real, STATE_FILE))
    with_bpool = bool(state.get("bpool")) if bpool is None else bpool
    kids = tuple(state.get("children", ())) if children is None else tuple(children)
    for child in kids:
        if not re.match(r"^[a-z][a-z0-9_.-]*$", child):
            raise UsageError(f"bad child dataset name {child!r}")
    return Sandbox(real, pool_name(real), with_bpool, kids)


def _load_state_at(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data: dict[str, Any] = json.load(f)
            return data
    except (OSError, ValueError):
        return {}


def _load_state(sb: Sandbox) -> dict[str, Any]:
    return _load_state_at(sb.state_file)


def _save_state(sb: Sandbox, state: dict[str, Any]) -> None:
    tmp = sb.state_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, sb.state_file)


def _pool_imported(zfs: ZfsBackend, pool: str) -> bool:
    return pool in zfs.pools()


def _run_ok(runner: Runner, argv: list[str], what: str, **kw: Any) -> None:
    result = runner.run(argv, **kw)
    if not result.ok:
        raise OperationFailed(f"{what}: {result.error_line()}")


def create(
    directory: str,
    *,
    suite: str | None = None,
    size: str = DEFAULT_SIZE,
    mirror: str = rootfs.DEFAULT_MIRROR,
    bpool: bool = False,
    children: Sequence[str] = (),
    runner: Runner = DEFAULT_RUNNER,
    log: Log = print,
    extra: Sequence[str] = (),
    prepare: Callable[[str], None] | None = None,
    key: str | None = None,
) -> Sandbox:
    """Create the sandbox, or bring an existing one back (idempotent).

    ``extra``: packages of the archive the root also holds; ``prepare``: run on the unpacked
    root before its first snapshot; ``key``: names what ``prepare`` makes, so that an existing
    sandbox made with another key is made again."""
    if os.geteuid() != 0:
        raise UsageError("the sandbox needs root (it creates a pool and mounts)")
    existing = _load_state_at(os.path.join(os.path.realpath(directory), STATE_FILE))
    # An existing sandbox keeps the options it was made with.
    if existing.get("complete") and existing.get("key") != key:
        destroy(directory, runner)
        existing = {}
    sb = sandbox_for(directory) if existing.get("complete") else sandbox_for(directory, bpool=bpool, children=children)
    os.makedirs(sb.directory, exist_ok=True)
    state = _load_state(sb)
    if daemon.ensure_running(runner):
        state["daemon_started"] = True
        state["daemon_pid"] = daemon.daemon_pid()
    else:
        daemon.clear_stale_mounts(runner)  # a daemon that died and was started again by another
    zfs = SandboxZfs(runner)
    suite = suite or state.get("suite") or rootfs.host_codename()
    pools = [(sb.pool, sb.image)] + ([(sb.bpool, sb.bpool_image)] if sb.bpool else [])
    for pool, image in pools:
        if os.path.exists(image) and not _pool_imported(zfs, pool):
            _run_ok(runner, ["zpool", "import", "-d", sb.directory, pool], f"cannot import sandbox pool {pool}")
    if _pool_imported(zfs, sb.pool) and state.get("complete"):
        _mount_next_boot(sb, zfs, runner)
        _save_state(sb, state)
        return sb
    for pool, _ in pools:
        if _pool_imported(zfs, pool):
            _destroy_pool(sb, zfs, runner, pool)  # a create that stopped half-way: start over
    tarball = rootfs.ensure_tarball(suite, mirror, runner, log, extra)
    state.update(
        {
            "pool": sb.pool,
            "image": sb.image,
            "root": sb.root,
            "suite": suite,
            "bpool": sb.with_bpool,
            "children": list(sb.children),
            "key": key,
            "complete": False,
        }
    )
    _save_state(sb, state)
    _run_ok(runner, ["truncate", "-s", size, sb.image], f"cannot create {sb.image}")
    _run_ok(runner, ["zpool", "create", "-m", "none", sb.pool, sb.image], "zpool create failed")
    zfs.create(sb.container, {"mountpoint": "none", "canmount": "off"})
    os.makedirs(sb.root, exist_ok=True)
    zfs.create(sb.first, {"canmount": "noauto", "mountpoint": sb.root})
    for child in sb.children:
        zfs.create(f"{sb.first}/{child}", {"canmount": "noauto"})
    if sb.bpool and sb.boot_container:
        _run_ok(runner, ["truncate", "-s", BOOT_POOL_SIZE, sb.bpool_image], f"cannot create {sb.bpool_image}")
        _run_ok(runner, ["zpool", "create", "-m", "none", sb.bpool, sb.bpool_image], "zpool create failed")
        zfs.create(sb.boot_container, {"mountpoint": "none", "canmount": "off"})
        zfs.create(
            f"{sb.boot_container}/{FIRST_NAME}", {"canmount": "noauto", "mountpoint": os.path.join(sb.root, "boot")}
        )
    log(f"sandbox: unpacking the {suite} root into {sb.first}")
    _fresh_grub_dir(sb, runner)
    _boot_up(sb, zfs, runner, sb.first)
    rootfs.unpack(tarball, sb.root, runner)
    if prepare is not None:
        prepare(sb.root)
    zfs.set_props(
        sb.first, model.metadata(rootfs.os_title(sb.root), "initial", "debootstrap --variant=minbase " + suite)
    )
    token = {PRISTINE: uuid.uuid4().hex}
    zfs.snapshot(f"{sb.first}@initial", recursive=True, props=token)
    zfs.set_bootfs(sb.pool, sb.first)
    _run_ok(runner, ["zfs", "send", "-R", f"{sb.first}@initial"], "zfs send failed", stdout_path=sb.pristine_stream)
    twin = sb.twin(sb.first)
    if twin:
        zfs.snapshot(f"{twin}@initial", props=token)
        _run_ok(
            runner, ["zfs", "send", "-R", f"{twin}@initial"], "zfs send failed", stdout_path=sb.pristine_boot_stream
        )
    state["complete"] = True
    state["pristine"] = _pristine_record(sb, runner)
    _save_state(sb, state)
    return sb


def _fresh_grub_dir(sb: Sandbox, runner: Runner) -> None:
    """An empty GRUB directory with a new grubenv (grub-editenv create)."""
    os.makedirs(sb.grub_dir, exist_ok=True)
    for name in os.listdir(sb.grub_dir):
        path = os.path.join(sb.grub_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)  # a platform directory a test made (x86_64-efi)
        else:
            os.unlink(path)
    _run_ok(runner, ["grub-editenv", os.path.join(sb.grub_dir, "grubenv"), "create"], "grub-editenv create failed")


def _boot_up(sb: Sandbox, zfs: ZfsBackend, runner: Runner, dataset: str, children: list[str] | None = None) -> None:
    """Mount ``dataset`` at the root, its children, its boot twin, and GRUB's directory.

    ``children``: the child filesystems of ``dataset`` when the caller knows them all unmounted."""
    if dataset_mounted_at(sb.root) != dataset:
        _remove_empty_dirs(sb.root)
        zfs.mount(dataset)
    if children is None:
        children = [ds.name for ds in zfs.list_tree(dataset)[1:] if not ds.is_snapshot and not ds.mounted]
    for child in children:
        zfs.mount(child)
    twin = sb.twin(dataset)
    if twin and dataset_mounted_at(os.path.join(sb.root, "boot")) != twin:
        zfs.mount(twin)
    target = os.path.join(sb.root, "boot/grub")
    os.makedirs(target, exist_ok=True)
    if _load_state(sb).get("grub_inside"):
        return  # the Root-on-ZFS guide's layout: GRUB's directory is the boot twin's own
    if not any(m.mountpoint == os.path.realpath(target) for m in read_mounts()):
        _run_ok(runner, ["mount", "--bind", sb.grub_dir, target], "cannot bind GRUB's directory")


def grub_inside(directory: str, inside: bool, runner: Runner = DEFAULT_RUNNER) -> str:
    """Move GRUB's directory inside the checkpoints (``inside``: the running one's boot twin, or
    root, gets its own /boot/grub with a fresh grubenv, as grub-install there would leave it), or
    back to the shared one; later reboots keep the choice."""
    sb = sandbox_for(directory)
    state = _load_state(sb)
    state["grub_inside"] = inside
    _save_state(sb, state)
    target = os.path.join(sb.root, "boot/grub")
    if inside:
        if any(m.mountpoint == os.path.realpath(target) for m in read_mounts()):
            _run_ok(runner, ["umount", target], "cannot unbind GRUB's directory")
        _run_ok(runner, ["grub-editenv", os.path.join(target, "grubenv"), "create"], "grub-editenv create failed")
        return f"GRUB's directory is now inside {dataset_mounted_at(os.path.join(sb.root, 'boot')) or 'the root'}"
    _boot_up(sb, SandboxZfs(runner), runner, dataset_mounted_at(sb.root) or sb.first)
    return "GRUB's directory is shared again"


def _remove_empty_dirs(top: str) -> None:
    """Mountpoint directories zfs-fuse left under an unmounted root (it refuses a non-empty one)."""
    for path, dirs, files in os.walk(top, topdown=False):
        if path != top and not dirs and not files and not os.path.ismount(path):
            try:
                os.rmdir(path)
            except OSError:
                pass


def _shut_down(sb: Sandbox, zfs: ZfsBackend, runner: Runner) -> str | None:
    """Unmount everything below the root, then the root; returns what was mounted there."""
    current = dataset_mounted_at(sb.root)
    kill_processes_in(sb.root)
    _unmount_all_under(sb.root, zfs, runner, keep_root=True)
    if current is not None:
        zfs.unmount(current)
    return current


def _mount_next_boot(sb: Sandbox, zfs: ZfsBackend, runner: Runner) -> None:
    """After a daemon restart nothing is mounted: boot what boots by default."""
    current = dataset_mounted_at(sb.root)
    target = current or _default_boot(Bootloader(zfs, sb.grub_dir, runner), sb)
    if target:
        _boot_up(sb, zfs, runner, target)


def _default_boot(boot: Bootloader, sb: Sandbox) -> str | None:
    """What boots when there is no one-time request: GRUB's default if set, else bootfs."""
    state = boot.state(sb.pool, sb.container)
    return state.grub_default or state.bootfs


def _counted_trial(boot: Bootloader, sb: Sandbox) -> str | None:
    """GRUB's part of a counted trial, as the menu's counter does it (apt_clone.boot.grub.TRIAL_COUNTER,
    or where grubenv is on ZFS apt_clone.boot.counter's script, in the block it names): a try
    left: spend it and boot the trial; none: forget the trial."""
    count = boot.count_env()
    if count is None or boot.grub_dir is None:
        return None
    if count is not boot.grubenv and not os.path.exists(os.path.join(boot.grub_dir, counter.SCRIPT)):
        return None  # no script sources that block
    env = count.read()
    trial = env.get(grub.TRIAL_VAR)
    if not trial:
        return None
    tries = env.get(grub.TRIES_VAR, "")
    if re.fullmatch(r"1(1*)", tries):
        count.set(**{grub.TRIES_VAR: tries[1:]})
        name = grub.name_from_entry(trial)
        return f"{sb.container}/{name}" if name else None
    count.set(**{grub.TRIAL_VAR: ""})
    return None


def _grub_reads(sb: Sandbox, zfs: ZfsBackend, runner: Runner) -> Bootloader:
    """The GRUB directory GRUB reads: the shared one, or (``grub --inside``) the running checkpoint's."""
    inside = _load_state(sb).get("grub_inside")
    where = os.path.join(sb.root, "boot/grub") if inside else sb.grub_dir
    return Bootloader(zfs, where, runner, root=sb.root)


def next_boot(sb: Sandbox, zfs: ZfsBackend, runner: Runner = DEFAULT_RUNNER) -> str | None:
    """What boots next: GRUB's one-time entry (consumed, as GRUB does) or a counted trial with a
    try left, else its default, else bootfs."""
    boot = Bootloader(zfs, sb.grub_dir, runner)
    counted = _counted_trial(_grub_reads(sb, zfs, runner), sb)
    return counted or boot.take_once(sb.container) or _default_boot(boot, sb)


def grub_picks(directory: str, runner: Runner = DEFAULT_RUNNER) -> str | None:
    """What GRUB boots now (spending a try or the one-time request, as it does), booting nothing:
    a boot that dies before userspace, as a panic does."""
    return next_boot(_existing(directory), SandboxZfs(runner), runner)


def reboot(directory: str, runner: Runner = DEFAULT_RUNNER) -> tuple[str | None, str]:
    """The sandbox's stand-in for a reboot: mount the next-boot checkpoint at the root."""
    sb = _existing(directory)
    zfs = SandboxZfs(runner)
    target = next_boot(sb, zfs, runner)
    if target is None:
        raise OperationFailed(f"pool {sb.pool} has no bootfs: nothing to boot")
    current = _shut_down(sb, zfs, runner)
    _boot_up(sb, zfs, runner, target)
    return current, target


Props = dict[str, dict[str, tuple[str, str]]]
"""A container's tree as ``zfs get all`` shows it: dataset -> property -> (value, source)."""


def _read_all(runner: Runner, container: str) -> Props:
    """Every property of every dataset and snapshot of ``container``'s tree, in one zfs read
    (parents before their children, as ``zfs get -r`` lists them)."""
    argv = ["zfs", "get", "-Hp", "-r", "-o", "name,property,value,source", "all", container]
    result = runner.run(argv)
    if not result.ok:
        raise OperationFailed(f"cannot read the properties of {container}: {result.error_line()}")
    found: Props = {}
    for line in result.stdout.splitlines():
        name, prop, value, source = line.split("\t", 3)
        found.setdefault(name, {})[prop] = (value, source)
    return found


def _local(found: Props) -> dict[str, dict[str, str]]:
    """The properties set on each dataset (locally or by a receive)."""
    return {
        name: {p: v for p, (v, src) in props.items() if src in ("local", "received")} for name, props in found.items()
    }


def _value(found: Props, name: str, prop: str) -> str | None:
    value = found.get(name, {}).get(prop, ("-", ""))[0]
    return None if value in ("-", "") else value


def _clones_of(found: Props, snapshots: list[str], candidates: list[str]) -> set[str]:
    """The candidates that ``zfs destroy -R`` of the snapshots takes along: clones of them, and
    clones of snapshots of those clones (so destroying them again is not tried)."""
    gone = set(snapshots)
    grew = True
    while grew:
        grew = False
        for name in candidates:
            origin = _value(found, name, "origin")
            if name not in gone and origin and (origin in gone or origin.split("@", 1)[0] in gone):
                gone.add(name)
                grew = True
    return gone


def _pristine_record(sb: Sandbox, runner: Runner) -> dict[str, Any]:
    """What a fast reset restores: each container's first root (and @initial's token) and local properties."""
    record: dict[str, Any] = {}
    for container, first in ((sb.container, sb.first), (sb.boot_container, sb.twin(sb.first))):
        if container and first:
            found = _read_all(runner, container)
            if not _value(found, f"{first}@initial", PRISTINE):  # received from a stream made before tokens
                _run_ok(runner, ["zfs", "set", f"{PRISTINE}={uuid.uuid4().hex}", f"{first}@initial"], "zfs set failed")
                found = _read_all(runner, container)
            record[container] = {
                "first": first,
                "token": _value(found, f"{first}@initial", PRISTINE),
                "props": _local(found),
            }
    return record


def _fast_reset(
    sb: Sandbox, zfs: SandboxZfs, runner: Runner, container: str, record: dict[str, Any]
) -> list[str] | None:
    """Back to the pristine state without receiving the root again: destroy every other dataset
    and snapshot, roll the first root back to @initial and restore the local properties.

    One zfs read serves it all (rolling back and destroying other datasets change no property
    of what stays). The pristine @initial (known by its token) may have moved to another
    checkpoint, which a promotion does: that one is renamed back to the first root's name.
    Returns the first root's child filesystems (left unmounted); None (and nothing changed) when
    no filesystem that is not a clone holds the pristine @initial."""
    first = record["first"]
    if not record.get("token"):
        return None
    found = _read_all(runner, container)
    names = list(found)
    holders = [n[: -len("@initial")] for n in names if n.endswith("@initial") and n.rsplit("/", 1)[0] == container]
    holder = first if first in holders else holders[0] if len(holders) == 1 else None
    if holder is None or _value(found, f"{holder}@initial", PRISTINE) != record["token"]:
        return None
    ours = [n for n in names if n == holder or n.startswith((holder + "/", holder + "@"))]
    if any(_value(found, n, "origin") for n in ours if "@" not in n):
        return None  # the pristine root is a clone now: receive it again
    for name in reversed(names):  # children before their parents
        if "@" not in name and _value(found, name, "mounted") == "yes":
            zfs.unmount(name)
    doomed = [n for n in names if n.startswith(holder + "@") and not n.endswith("@initial")]
    others = [n for n in names if "@" not in n and n.rsplit("/", 1)[0] == container and n not in ours]
    gone = _clones_of(found, doomed, others)
    doomed += [n for n in others if n not in gone]
    for name in doomed:  # later snapshots of the first root with their clones, then every other checkpoint
        try:
            zfs.destroy_with_dependents(name)
        except ZfsNotFound:
            pass  # went with an earlier one's dependents
    if holder != first:
        zfs.rename(holder, first)
    # The first root, then its children (unmounted above).
    filesystems = sorted(first + name[len(holder) :] for name in ours if "@" not in name)
    for name in filesystems:
        zfs.rollback(f"{name}@initial", destroy_newer=True)
    local = _local(found)
    now = {first + n[len(holder) :]: local[n] for n in ours if n.endswith("@initial") or "@" not in n}
    now[container] = local.get(container, {})
    for name, props in now.items():
        want = record["props"].get(name, {})
        for prop in props.keys() - want.keys():
            zfs.inherit(name, prop)
    for name, want in record["props"].items():
        changed = {p: v for p, v in want.items() if now.get(name, {}).get(p) != v}
        for prop, value in changed.items():
            _run_ok(runner, ["zfs", "set", f"{prop}={value}", name], f"cannot restore {prop} of {name}")
    return filesystems[1:]


def reset(directory: str, runner: Runner = DEFAULT_RUNNER) -> Sandbox:
    """Put the sandbox back to its first state: rootfs-nmu-000@initial, booted and active.

    Every checkpoint is destroyed and the first root rolled back to @initial with its properties
    (a fraction of a second); when that root is not the pristine one any more (a promotion made it
    a clone), it is received again from the pristine stream (about a second on real hardware).
    """
    sb = _existing(directory)
    zfs = SandboxZfs(runner)
    state = _load_state(sb)
    record = state.get("pristine") or {}
    _shut_down(sb, zfs, runner)
    for pool in (sb.pool, sb.bpool):
        if pool:
            _release_mounts(zfs, runner, pool)
    received = False
    children: list[str] | None = None
    for container, first, stream in (
        (sb.container, sb.first, sb.pristine_stream),
        (sb.boot_container, sb.twin(sb.first), sb.pristine_boot_stream),
    ):
        if not container or not first:
            continue
        if container in record:
            kept = _fast_reset(sb, zfs, runner, container, record[container])
            if kept is not None:
                children = kept if container == sb.container else children
                continue
        received = True
        for ds in reversed(zfs.list_tree(container)):
            if ds.mounted and not ds.is_snapshot:
                zfs.unmount(ds.name)
        zfs.destroy_with_dependents(container)
        zfs.create(container, {"mountpoint": "none", "canmount": "off"})
        recv = runner.run(["zfs", "recv", first], stdin_path=stream)
        if not zfs.exists(f"{first}@initial"):
            raise OperationFailed(f"cannot receive the pristine {first}: {recv.error_line()}")
        for ds in reversed(zfs.list_tree(first)):  # zfs-fuse mounts what it receives
            if ds.mounted and not ds.is_snapshot:
                zfs.unmount(ds.name)
    _fresh_grub_dir(sb, runner)
    _boot_up(sb, zfs, runner, sb.first, None if received else children)
    zfs.set_bootfs(sb.pool, sb.first)
    if received or not record:
        state["pristine"] = _pristine_record(sb, runner)
        _save_state(sb, state)
    Journal(sb.container).remove()  # apt-clone's journal of this system describes a past that is gone
    return sb


def _unmount_all_under(path: str, zfs: ZfsBackend, runner: Runner, keep_root: bool) -> None:
    """Unmount what is below ``path``: datasets with zfs, bind mounts and the rest lazily."""
    real = os.path.realpath(path)
    for m in mounts_under(real):
        if keep_root and m.mountpoint == real:
            continue
        if m.fstype in ZFS_FSTYPES:
            zfs.unmount(m.source)
        else:
            runner.run(["umount", "-l", m.mountpoint])


def status(directory: str, runner: Runner = DEFAULT_RUNNER) -> dict[str, Any]:
    sb = _existing(directory)
    state = _load_state(sb)
    zfs = SandboxZfs(runner)
    out: dict[str, Any] = {
        "directory": sb.directory,
        "pool": sb.pool,
        "image": sb.image,
        "root": sb.root,
        "be_container": sb.container,
        "boot_pool": sb.bpool,
        "boot_container": sb.boot_container,
        "children": list(sb.children),
        "grub_dir": sb.grub_dir,
        "daemon_pid": None if daemon.kernel_zfs() else daemon.daemon_pid(),
        "daemon_started_by_sandbox": bool(state.get("daemon_started")),
        "suite": state.get("suite"),
        "complete": bool(state.get("complete")),
        "imported": False,
    }
    if _pool_imported(zfs, sb.pool):
        pool = zfs.pool(sb.pool)
        out.update(
            imported=True,
            bootfs=pool.bootfs,
            current=dataset_mounted_at(sb.root),
            free=pool.free,
            size=pool.size,
            datasets=[ds.name for ds in zfs.list_tree(sb.container)],
        )
    return out


def destroy(directory: str, runner: Runner = DEFAULT_RUNNER) -> bool:
    """Remove everything the sandbox made; returns whether the daemon was stopped."""
    sb = sandbox_for(directory)
    state = _load_state(sb)
    if not state and not os.path.exists(sb.image):
        raise UsageError(f"{directory}: no sandbox here")
    zfs = SandboxZfs(runner)
    if daemon.kernel_zfs() or daemon.responding(runner):
        for pool in (sb.pool, sb.bpool):
            if pool and _pool_imported(zfs, pool):
                _destroy_pool(sb, zfs, runner, pool)
    for path in (
        sb.image,
        sb.bpool_image,
        sb.pristine_stream,
        sb.pristine_boot_stream,
        sb.state_file,
        sb.state_file + ".tmp",
    ):
        if os.path.exists(path):
            os.unlink(path)
    if os.path.isdir(sb.grub_dir):
        for name in os.listdir(sb.grub_dir):
            os.unlink(os.path.join(sb.grub_dir, name))
        os.rmdir(sb.grub_dir)
    if os.path.isdir(sb.root):
        for sub in ("boot/grub", "boot", "var"):
            path = os.path.join(sb.root, sub)
            if os.path.isdir(path) and not os.listdir(path):
                os.rmdir(path)
        if not os.listdir(sb.root):
            os.rmdir(sb.root)
    stopped = False
    if state.get("daemon_started"):
        stopped = daemon.stop_if_idle(runner)
    if os.path.isdir(sb.directory) and not os.listdir(sb.directory):
        os.rmdir(sb.directory)
    return stopped


def _release_mounts(zfs: ZfsBackend, runner: Runner, pool: str, keep: str | None = None) -> None:
    """Unmount this pool's filesystems wherever they are (a crashed run may have left a clone
    mounted, with a chroot and processes in it), one by one: never `zfs unmount -a`, which
    would act on other pools of the daemon. ``keep``: a mountpoint to leave mounted."""
    mine = [m for m in read_mounts() if m.source == pool or m.source.startswith(pool + "/")]
    for m in sorted(mine, key=lambda m: m.mountpoint.count("/"), reverse=True):
        if m.mountpoint == keep:
            continue
        kill_processes_in(m.mountpoint)
        _unmount_all_under(m.mountpoint, zfs, runner, keep_root=True)
        try:
            zfs.unmount(m.source)
        except ZfsNotFound:
            pass


def _destroy_pool(sb: Sandbox, zfs: SandboxZfs, runner: Runner, pool: str) -> None:
    _release_mounts(zfs, runner, pool)
    zfs.destroy_pool(pool)


def _existing(directory: str) -> Sandbox:
    sb = sandbox_for(directory)
    if not os.path.exists(sb.state_file):
        raise UsageError(f"{directory}: no sandbox here (run: python -m tests.sandbox create --dir {directory})")
    return sb
