"""The sandbox: a file-backed pool holding a debootstrapped Debian root, laid out like a host.

Layout for sandbox directory DIR (pool name derived from DIR, so sandboxes coexist)::

    DIR/pool.img                 the pool's backing file (sparse)
    DIR/root                     the "booted" root: the checkpoint mounted there is current
    DIR/sandbox.json             what this tool made (pool, image, daemon it started)
    <pool>/ROOT                  the boot-environment container (mountpoint=none)
    <pool>/ROOT/rootfs-nmu-000   the first root, mountpoint=DIR/root canmount=noauto,
                                 snapshot @initial, title "<PRETTY_NAME>" kind initial

Every root dataset has ``mountpoint=DIR/root canmount=noauto`` as ``mountpoint=/`` on a real
host; ``reboot`` mounts the one that boots next there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import model
from ..boot import Bootloader
from ..errors import OperationFailed, UsageError
from ..runner import DEFAULT_RUNNER, Runner
from ..system import dataset_mounted_at, mounts_under, read_mounts
from ..zfs import CliZfs, ZfsBackend, ZfsNotFound
from . import daemon, rootfs

STATE_FILE = "sandbox.json"
FIRST_NAME = "rootfs-nmu-000"
DEFAULT_SIZE = "3G"

Log = Callable[[str], None]


@dataclass(frozen=True)
class Sandbox:
    directory: str
    pool: str

    @property
    def image(self) -> str:
        return os.path.join(self.directory, "pool.img")

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
    def grub_dir(self) -> str:
        """GRUB's directory, shared by every checkpoint (as an ESP holding /boot/grub would be)."""
        return os.path.join(self.directory, "grub")

    @property
    def first(self) -> str:
        return f"{self.container}/{FIRST_NAME}"


def pool_name(directory: str) -> str:
    """A pool name derived from the directory: readable and unique per path."""
    real = os.path.realpath(directory)
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(real.rstrip("/")) or "root")[:24]
    digest = hashlib.sha1(real.encode()).hexdigest()[:6]
    return f"acsb-{base}-{digest}"


def sandbox_for(directory: str) -> Sandbox:
    real = os.path.realpath(directory)
    return Sandbox(real, pool_name(real))


def _load_state(sb: Sandbox) -> dict[str, Any]:
    try:
        with open(sb.state_file, encoding="utf-8") as f:
            data: dict[str, Any] = json.load(f)
            return data
    except (OSError, ValueError):
        return {}


def _save_state(sb: Sandbox, state: dict[str, Any]) -> None:
    tmp = sb.state_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, sb.state_file)


def _pool_imported(zfs: ZfsBackend, pool: str) -> bool:
    return pool in zfs.pools()


def create(
    directory: str,
    *,
    suite: str | None = None,
    size: str = DEFAULT_SIZE,
    mirror: str = rootfs.DEFAULT_MIRROR,
    runner: Runner = DEFAULT_RUNNER,
    log: Log = print,
) -> Sandbox:
    """Create the sandbox, or bring an existing one back (idempotent)."""
    if os.geteuid() != 0:
        raise UsageError("the sandbox needs root (it creates a pool and mounts)")
    sb = sandbox_for(directory)
    os.makedirs(sb.directory, exist_ok=True)
    state = _load_state(sb)
    started = daemon.ensure_running(runner)
    if started:
        state["daemon_started"] = True
        state["daemon_pid"] = daemon.daemon_pid()
    zfs = CliZfs(runner)
    suite = suite or state.get("suite") or rootfs.host_codename()
    if os.path.exists(sb.image) and not _pool_imported(zfs, sb.pool):
        result = runner.run(["zpool", "import", "-d", sb.directory, sb.pool])
        if not result.ok:
            raise OperationFailed(f"cannot import sandbox pool {sb.pool}: {result.error_line()}")
    if _pool_imported(zfs, sb.pool) and state.get("complete"):
        _mount_next_boot(sb, zfs, runner)
        state.setdefault("created_by", "apt_clone.sandbox")
        _save_state(sb, state)
        return sb
    if _pool_imported(zfs, sb.pool):
        # A create that stopped half-way: start over.
        _destroy_pool(sb, zfs, runner)
    tarball = rootfs.ensure_tarball(suite, mirror, runner, log)
    state.update({"pool": sb.pool, "image": sb.image, "root": sb.root, "suite": suite, "complete": False})
    _save_state(sb, state)
    result = runner.run(["truncate", "-s", size, sb.image])
    if not result.ok:
        raise OperationFailed(f"cannot create {sb.image}: {result.error_line()}")
    result = runner.run(["zpool", "create", "-m", "none", sb.pool, sb.image])
    if not result.ok:
        raise OperationFailed(f"zpool create failed: {result.error_line()}")
    zfs.create(sb.container, {"mountpoint": "none", "canmount": "off"})
    first = f"{sb.container}/{FIRST_NAME}"
    os.makedirs(sb.root, exist_ok=True)
    zfs.create(first, {"canmount": "noauto", "mountpoint": sb.root})
    log(f"sandbox: unpacking the {suite} root into {first}")
    _fresh_grub_dir(sb, runner)
    _boot_up(sb, zfs, runner, first)
    rootfs.unpack(tarball, sb.root, runner)
    zfs.set_props(first, model.metadata(rootfs.os_title(sb.root), "initial", "debootstrap --variant=minbase " + suite))
    zfs.snapshot(f"{first}@initial")
    zfs.set_bootfs(sb.pool, first)
    result = runner.run(["zfs", "send", "-R", f"{first}@initial"], stdout_path=sb.pristine_stream)
    if not result.ok:
        raise OperationFailed(f"zfs send of the pristine root failed: {result.error_line()}")
    state["complete"] = True
    _save_state(sb, state)
    return sb


def _fresh_grub_dir(sb: Sandbox, runner: Runner) -> None:
    """An empty GRUB directory with a new grubenv (grub-editenv create)."""
    os.makedirs(sb.grub_dir, exist_ok=True)
    for name in os.listdir(sb.grub_dir):
        os.unlink(os.path.join(sb.grub_dir, name))
    result = runner.run(["grub-editenv", os.path.join(sb.grub_dir, "grubenv"), "create"])
    if not result.ok:
        raise OperationFailed(f"grub-editenv create failed: {result.error_line()}")


def _boot_up(sb: Sandbox, zfs: ZfsBackend, runner: Runner, dataset: str) -> None:
    """Mount ``dataset`` at the root and GRUB's directory at its /boot/grub."""
    if dataset_mounted_at(sb.root) != dataset:
        zfs.mount(dataset)
    target = os.path.join(sb.root, "boot/grub")
    os.makedirs(target, exist_ok=True)
    if not any(m.mountpoint == os.path.realpath(target) for m in read_mounts()):
        result = runner.run(["mount", "--bind", sb.grub_dir, target])
        if not result.ok:
            raise OperationFailed(f"cannot bind GRUB's directory: {result.error_line()}")


def _shut_down(sb: Sandbox, zfs: ZfsBackend, runner: Runner) -> str | None:
    """Unmount everything below the root, then the root; returns what was mounted there."""
    current = dataset_mounted_at(sb.root)
    _unmount_all_under(sb.root, runner, keep_root=True)
    if current is not None:
        zfs.unmount(current)
    return current


def _mount_next_boot(sb: Sandbox, zfs: ZfsBackend, runner: Runner) -> None:
    """After a daemon restart nothing is mounted: boot what boots by default."""
    current = dataset_mounted_at(sb.root)
    target = current or Bootloader(zfs, sb.grub_dir, runner).default_boot(sb.pool, sb.container)
    if target:
        _boot_up(sb, zfs, runner, target)


def next_boot(sb: Sandbox, zfs: ZfsBackend, runner: Runner = DEFAULT_RUNNER) -> str | None:
    """What boots next: GRUB's one-time entry (consumed, as GRUB does), else its default, else bootfs."""
    boot = Bootloader(zfs, sb.grub_dir, runner)
    return boot.take_once(sb.container) or boot.default_boot(sb.pool, sb.container)


def reboot(directory: str, runner: Runner = DEFAULT_RUNNER) -> tuple[str | None, str]:
    """The sandbox's stand-in for a reboot: mount the next-boot checkpoint at the root."""
    sb = _existing(directory)
    zfs = CliZfs(runner)
    target = next_boot(sb, zfs, runner)
    if target is None:
        raise OperationFailed(f"pool {sb.pool} has no bootfs: nothing to boot")
    current = _shut_down(sb, zfs, runner)
    _boot_up(sb, zfs, runner, target)
    return current, target


def reset(directory: str, runner: Runner = DEFAULT_RUNNER) -> Sandbox:
    """Put the sandbox back to its first state: rootfs-nmu-000@initial, booted and active.

    Every checkpoint is destroyed and the pristine root is received again (about a second).
    """
    sb = _existing(directory)
    zfs = CliZfs(runner)
    _shut_down(sb, zfs, runner)
    for ds in reversed(zfs.list_tree(sb.container)):
        if ds.mounted and not ds.is_snapshot:
            zfs.unmount(ds.name)
    zfs.destroy(sb.container, recursive=True, dependents=True)
    zfs.create(sb.container, {"mountpoint": "none", "canmount": "off"})
    received = runner.run(["zfs", "recv", sb.first], stdin_path=sb.pristine_stream)
    if not zfs.exists(f"{sb.first}@initial"):
        raise OperationFailed(f"cannot receive the pristine root: {received.error_line()}")
    _fresh_grub_dir(sb, runner)
    _boot_up(sb, zfs, runner, sb.first)
    zfs.set_bootfs(sb.pool, sb.first)
    return sb


def _unmount_all_under(path: str, runner: Runner, keep_root: bool) -> None:
    """Unmount what a crashed run left below ``path`` (bind mounts, clones mounted inside)."""
    real = os.path.realpath(path)
    for m in mounts_under(real):
        if keep_root and m.mountpoint == real:
            continue
        runner.run(["umount", "-l", m.mountpoint])


def status(directory: str, runner: Runner = DEFAULT_RUNNER) -> dict[str, Any]:
    sb = _existing(directory)
    state = _load_state(sb)
    zfs = CliZfs(runner)
    out: dict[str, Any] = {
        "directory": sb.directory,
        "pool": sb.pool,
        "image": sb.image,
        "root": sb.root,
        "be_container": sb.container,
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
    zfs = CliZfs(runner)
    if (daemon.kernel_zfs() or daemon.responding(runner)) and _pool_imported(zfs, sb.pool):
        _destroy_pool(sb, zfs, runner)
    for path in (sb.image, sb.pristine_stream, sb.state_file, sb.state_file + ".tmp"):
        if os.path.exists(path):
            os.unlink(path)
    if os.path.isdir(sb.grub_dir):
        for name in os.listdir(sb.grub_dir):
            os.unlink(os.path.join(sb.grub_dir, name))
        os.rmdir(sb.grub_dir)
    if os.path.isdir(sb.root) and not os.listdir(sb.root):
        os.rmdir(sb.root)
    stopped = False
    if state.get("daemon_started"):
        stopped = daemon.stop_if_idle(runner)
    if os.path.isdir(sb.directory) and not os.listdir(sb.directory):
        os.rmdir(sb.directory)
    return stopped


def _destroy_pool(sb: Sandbox, zfs: CliZfs, runner: Runner) -> None:
    # Unmount this pool's filesystems one by one (and anything mounted inside them):
    # never `zfs unmount -a`, which would act on other pools of the daemon.
    mine = [m for m in read_mounts() if m.source == sb.pool or m.source.startswith(sb.pool + "/")]
    for m in sorted(mine, key=lambda m: m.mountpoint.count("/"), reverse=True):
        _unmount_all_under(m.mountpoint, runner, keep_root=True)
        try:
            zfs.unmount(m.source)
        except ZfsNotFound:
            pass
    zfs.destroy_pool(sb.pool)


def _existing(directory: str) -> Sandbox:
    sb = sandbox_for(directory)
    if not os.path.exists(sb.state_file):
        raise UsageError(f"{directory}: no sandbox here (run: python -m apt_clone.sandbox create --dir {directory})")
    return sb
