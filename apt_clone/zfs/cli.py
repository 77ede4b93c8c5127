"""ZFS through the ``zfs``/``zpool`` commands, in both dialects we meet.

Reads use ``zfs get -Hp -o name,property,value,source -r``: one call returns every dataset
and snapshot under a container with exact numbers and tells local user properties from
inherited ones (``zfs list`` cannot: a snapshot would show its dataset's title as its own).
The dialects differ elsewhere:

* OpenZFS 2.x: ``zpool get -Hp``, ``zfs set`` of several properties at once, ``zfs get -t``.
* zfs-fuse (pool version 23): no ``zfs list -p``, no flags on ``zpool get`` (pool properties
  come from ``zpool list -H -o``), one property per ``zfs set``, and ``zfs clone`` tries to
  mount the clone whatever ``canmount`` says, so a mountpoint is set only after cloning.
  ``zfs snapshot -o`` works in both.

Which one runs is known without running anything when OpenZFS's kernel module is loaded or
zfs-fuse's daemon socket is there; otherwise ``zfs version`` tells (zfs-fuse does not know it).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Mapping, Sequence

from ..record import record
from ..runner import DEFAULT_RUNNER, CommandNotFound, Completed, Runner
from . import props as zprops
from .backend import ZfsBackend
from .errors import ZfsBusy, ZfsError, ZfsNotFound, ZfsUnavailable, ZfsUnsupported, classify, error_from
from .records import Dataset, Pool

NATIVE_PROPS = (
    "type",
    "origin",
    "createtxg",
    "creation",
    "used",
    "available",
    "referenced",
    "mountpoint",
    "canmount",
    "mounted",
)

OPENZFS = "openzfs"
ZFS_FUSE = "zfs-fuse"

SAVED_MOUNTPOINT = zprops.NAMESPACE + "saved-mountpoint"
"""Where :meth:`CliZfs.mount_at` keeps a mountpoint it changed (zfs-fuse), for undo and recovery."""


@record(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff for "dataset is busy"."""

    attempts: int = 10
    first_delay: float = 0.05
    max_delay: float = 1.0
    sleep: Callable[[float], None] = time.sleep

    def delays(self) -> list[float]:
        out, delay = [], self.first_delay
        for _ in range(self.attempts - 1):
            out.append(delay)
            delay = min(delay * 2, self.max_delay)
        return out


KERNEL_MODULE = "/sys/module/zfs"
"""Present when the OpenZFS kernel module is loaded: the dialect is known without running anything."""
FUSE_SOCKET = "/run/zfs/zfs_socket"
"""zfs-fuse's daemon socket (its CLI talks to nothing else): with no kernel module, zfs-fuse."""


def _filesystems_argv(root: str) -> list[str]:
    return ["zfs", "list", "-H", "-o", "name", "-t", "filesystem", "-r", root]


class CliZfs(ZfsBackend):
    """The CLI backend. ``dialect`` is detected on first use unless given."""

    def __init__(
        self,
        runner: Runner = DEFAULT_RUNNER,
        dialect: str | None = None,
        retry: RetryPolicy | None = None,
        kernel_module: str = KERNEL_MODULE,
        fuse_socket: str = FUSE_SOCKET,
    ) -> None:
        self.runner = runner
        self._dialect = dialect
        self.retry = retry or RetryPolicy()
        self._kernel_module = kernel_module
        self._fuse_socket = fuse_socket

    # --- plumbing ---------------------------------------------------------------
    @property
    def dialect(self) -> str:
        if self._dialect is None:
            self._dialect = self._detect_dialect()
        return self._dialect

    def _detect_dialect(self) -> str:
        """OpenZFS when its kernel module is loaded, zfs-fuse when its daemon's socket is there
        without it (no exec: each costs a command's start-up); otherwise ask ``zfs version``,
        which zfs-fuse does not know."""
        if os.path.isdir(self._kernel_module):
            return OPENZFS
        try:
            if stat.S_ISSOCK(os.lstat(self._fuse_socket).st_mode):
                return ZFS_FUSE
        except OSError:
            pass
        try:
            result = self.runner.run(["zfs", "version"])
        except CommandNotFound as exc:
            raise ZfsUnavailable("zfs: command not found (install zfsutils-linux or zfs-fuse)") from exc
        if result.ok and result.stdout.startswith("zfs-"):
            return OPENZFS
        return ZFS_FUSE

    def _run(self, argv: Sequence[str]) -> Completed:
        try:
            result = self.runner.run(argv)
        except CommandNotFound as exc:
            raise ZfsUnavailable(str(exc)) from exc
        if not result.ok:
            raise error_from(result.stderr or result.stdout, f"{' '.join(argv[:2])} failed")
        return result

    def _run_retrying_busy(
        self, argv: Sequence[str], *, io_errors: bool = False, remounts: str | None = None
    ) -> Completed:
        """Retry "busy" (and, with ``io_errors``, zfs-fuse's transient "I/O error") with backoff.
        ``remounts``: the dataset a property change remounts (zfs-fuse's canmount, any
        mountpoint). One whose remount met "busy" was left unmounted with the property set, and
        the retry, finding it unmounted, leaves it so: it is mounted again after."""
        delays = self.retry.delays()
        remount = False
        while True:
            try:
                result = self._run(argv)
                break
            except ZfsError as exc:
                transient = isinstance(exc, ZfsBusy) or (io_errors and "I/O error" in str(exc))
                if not transient or not delays:
                    raise
                remount = remount or "unable to remount" in str(exc)
                self.retry.sleep(delays.pop(0))
        if remount and remounts and not self._mounted(remounts):
            self.mount(remounts)
        return result

    def _mounted(self, name: str) -> bool:
        return self._run(["zfs", "get", "-H", "-o", "value", "mounted", name]).stdout.strip() == "yes"

    # --- reads --------------------------------------------------------------------
    def _get_argv(self, names: Sequence[str], user_props: Sequence[str], recursive: bool) -> list[str]:
        argv = ["zfs", "get", "-Hp", "-o", "name,property,value,source"]
        if recursive:
            argv.append("-r")
        if self.dialect == OPENZFS:
            argv += ["-t", "filesystem,volume,snapshot"]
        argv.append(",".join((*NATIVE_PROPS, *user_props)))
        argv += list(names)
        return argv

    def list_tree(self, root: str, user_props: Sequence[str] = ()) -> list[Dataset]:
        out = self._run(self._get_argv([root], user_props, recursive=True)).stdout
        # Stable: the root first, the rest by createtxg (a promoted filesystem's snapshots are older).
        return sorted(parse_get(out), key=lambda ds: ds.name != root)

    def get(self, name: str, user_props: Sequence[str] = ()) -> Dataset:
        found = parse_get(self._run(self._get_argv([name], user_props, recursive=False)).stdout)
        for ds in found:
            if ds.name == name:
                return ds
        raise ZfsNotFound(f"cannot open '{name}': dataset does not exist")

    def get_many(self, names: Sequence[str], user_props: Sequence[str] = ()) -> dict[str, Dataset]:
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        try:
            result = self.runner.run(self._get_argv(wanted, user_props, recursive=False))
        except CommandNotFound as exc:
            raise ZfsUnavailable(str(exc)) from exc
        # zfs reads every name it can and says "dataset does not exist" of each other one.
        if not result.ok and not only_missing(result.stderr):
            raise error_from(result.stderr or result.stdout, "zfs get failed")
        return {ds.name: ds for ds in parse_get(result.stdout) if ds.name in wanted}

    def filesystems(self, root: str) -> list[str]:
        out = self._run(_filesystems_argv(root)).stdout
        return sorted(line for line in out.splitlines() if line)

    def reads_of(self, root: str | None, names: Sequence[str], user_props: Sequence[str] = ()) -> list[list[str]]:
        wanted = list(dict.fromkeys(names))
        listing = [_filesystems_argv(root)] if root is not None else []
        return [*listing, *([self._get_argv(wanted, user_props, recursive=False)] if wanted else [])]

    def snapshots(self, name: str) -> list[str]:
        argv = ["zfs", "list", "-H", "-o", "name,createtxg", "-t", "snapshot", "-d", "1", name]
        rows = [line.split("\t") for line in self._run(argv).stdout.splitlines() if "\t" in line]
        return [n for n, _ in sorted(((n, _int(t)) for n, t in rows), key=lambda r: r[1])]

    def clones(self, snapshots: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {snap: [] for snap in snapshots}
        if not snapshots:
            return out
        if self.dialect == OPENZFS:  # a property of each snapshot
            got = self._run(["zfs", "get", "-Hp", "-o", "name,value", "clones", *out]).stdout
            for line in got.splitlines():
                name, _, value = line.partition("\t")
                if name in out:
                    out[name] = [c for c in value.split(",") if c and c != "-"]
            return out
        # zfs-fuse has no such property: the origins of the pools' filesystems, names only.
        for pool in sorted({snap.split("/", 1)[0].split("@", 1)[0] for snap in snapshots}):
            got = self._run(["zfs", "list", "-H", "-o", "name,origin", "-t", "filesystem", "-r", pool]).stdout
            for line in got.splitlines():
                name, _, origin = line.partition("\t")
                if origin in out:
                    out[origin].append(name)
        return out

    def native(self, name: str, props: Sequence[str]) -> dict[str, str | None]:
        out: dict[str, str | None] = dict.fromkeys(props)
        for prop in props:  # one at a time: zfs-fuse refuses the whole list for one unknown name
            try:
                line = self._run(["zfs", "get", "-Hp", "-o", "value", prop, name]).stdout.strip()
            except ZfsNotFound:
                raise
            except ZfsError:
                continue
            out[prop] = None if line in ("", "-") else line
        return out

    def pool_features(self, pool: str) -> dict[str, str]:
        out = self._run(["zpool", "get", "-H", "-o", "property,value", "all", pool]).stdout
        return parse_features(out)

    def pools(self) -> list[str]:
        out = self._run(["zpool", "list", "-H", "-o", "name"]).stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    def pool(self, name: str) -> Pool:
        if self.dialect == OPENZFS:
            props = "size,free,bootfs,health,freeing"
            out = self._run(["zpool", "get", "-Hp", "-o", "name,property,value", props, name])
            return parse_zpool_get(out.stdout, name)
        out = self._run(["zpool", "list", "-H", "-o", "name,size,free,bootfs,health", name])
        return parse_zpool_list(out.stdout, name)

    # --- mutations ----------------------------------------------------------------
    def create(self, name: str, props: Mapping[str, str] | None = None) -> None:
        self._run(["zfs", "create", *_opts(props), name])

    def snapshot(self, name: str, *, recursive: bool = False, props: Mapping[str, str] | None = None) -> None:
        if "@" not in name:
            raise ZfsError(f"not a snapshot name: {name}")
        self._run(["zfs", "snapshot", *(["-r"] if recursive else []), *_opts(props), name])

    def clone(self, snapshot: str, target: str, props: Mapping[str, str] | None = None) -> None:
        props = dict(props or {})
        if self.dialect != ZFS_FUSE:
            self._run(["zfs", "clone", *_opts(props), snapshot, target])
            return
        # zfs-fuse mounts a new clone whatever canmount says: clone it unmountable, then give
        # it its mountpoint (setting one on a canmount=noauto dataset does not mount it).
        mountpoint = props.pop("mountpoint", None)
        props.setdefault("canmount", "noauto")
        self._run(["zfs", "clone", *_opts({**props, "mountpoint": "none"}), snapshot, target])
        try:
            if mountpoint is not None:
                self.set_props(target, {"mountpoint": mountpoint})
            else:
                self.inherit(target, "mountpoint")
        except ZfsError:
            self.destroy(target)
            raise

    def promote(self, name: str) -> None:
        self._run(["zfs", "promote", name])

    def destroy(self, name: str, *, recursive: bool = False) -> None:
        self._run_retrying_busy(["zfs", "destroy", *(["-r"] if recursive else []), name])

    def rename(self, old: str, new: str) -> None:
        if "@" in old:
            self._run_retrying_busy(["zfs", "rename", old, new])
            return
        mounted = [ds.name for ds in self.list_tree(old) if ds.mounted]
        for ds_name in sorted(mounted, reverse=True):
            self.unmount(ds_name)
        self._run_retrying_busy(["zfs", "rename", old, new])
        for ds_name in sorted(mounted):
            self.mount(new + ds_name[len(old) :])

    def rollback(self, snapshot: str, *, destroy_newer: bool = False) -> None:
        argv = ["zfs", "rollback"]
        if destroy_newer:
            argv.append("-r")
        # zfs-fuse answers "I/O error" for a moment after a freshly written filesystem is unmounted.
        self._run_retrying_busy([*argv, snapshot], io_errors=self.dialect == ZFS_FUSE)

    def set_props(self, name: str, props: Mapping[str, str]) -> None:
        for prop, value in props.items():
            if ":" in prop:  # every user property, ours included
                zprops.validate_value(prop, value)
        if not props:
            return
        # A set is idempotent, and one that remounts (canmount, mountpoint) can meet "busy".
        if self.dialect == ZFS_FUSE:
            for prop, value in props.items():
                self._run_retrying_busy(["zfs", "set", f"{prop}={value}", name], remounts=name)
        else:
            self._run_retrying_busy(["zfs", "set", *(f"{p}={v}" for p, v in props.items()), name], remounts=name)

    def inherit(self, name: str, prop: str) -> None:
        self._run_retrying_busy(["zfs", "inherit", prop, name], remounts=name)

    def mount(self, name: str) -> None:
        self._run_retrying_busy(["zfs", "mount", name])

    def unmount(self, name: str) -> None:
        self._run_retrying_busy(["zfs", "unmount", name])

    def set_bootfs(self, pool: str, dataset: str | None) -> None:
        self._run(["zpool", "set", f"bootfs={dataset or ''}", pool])

    def mount_at(self, name: str, directory: str, *, readonly: bool = False) -> None:
        os.makedirs(directory, exist_ok=True)
        if self.dialect == OPENZFS:
            self._run(["mount", "-t", "zfs", "-o", "zfsutil,ro" if readonly else "zfsutil", name, directory])
            return
        # zfs-fuse has no `mount -t zfs`: point the mountpoint there, keeping the old one (a
        # value kept already, by a run that died, is the real one and stays).
        ds = self.get(name, [SAVED_MOUNTPOINT])
        if SAVED_MOUNTPOINT not in ds.user:
            current = self._run(["zfs", "get", "-H", "-o", "value,source", "mountpoint", name]).stdout
            value, _, source = current.rstrip("\n").partition("\t")
            self.set_props(name, {SAVED_MOUNTPOINT: value if source == "local" else "-inherit-"})
        if readonly and ds.mounted:
            self.unmount(name)  # mounted read-write: mounted again, read-only, below
        self.set_props(name, {"mountpoint": directory})
        if readonly:
            self._run_retrying_busy(["zfs", "mount", "-o", "ro", name])
        elif not ds.mounted:  # a mounted one moves with its new mountpoint by itself
            self.mount(name)

    def unmount_at(self, name: str, directory: str, *, restore: bool = True) -> None:
        if self.dialect == OPENZFS:
            self._run_retrying_busy(["umount", directory])
            return
        ds = self.get(name, [SAVED_MOUNTPOINT])
        if ds.mounted:
            self.unmount(name)
        if restore:
            self.restore_mountpoint(name)

    @property
    def can_diff(self) -> bool:
        return self.dialect == OPENZFS

    def diff(self, snapshot: str, target: str) -> list[tuple[str, str, str | None]]:
        if not self.can_diff:
            raise ZfsUnsupported("not supported by this ZFS (zfs-fuse has no 'zfs diff')")
        out = self._run(["zfs", "diff", "-H", snapshot, target]).stdout
        rows: list[tuple[str, str, str | None]] = []
        for line in out.splitlines():
            fields = line.split("\t")
            if len(fields) >= 2:
                rows.append((fields[0], fields[1], fields[2] if len(fields) > 2 else None))
        return rows

    def restore_mountpoint(self, name: str) -> None:
        """Put back a mountpoint that :meth:`mount_at` changed (also used by recovery)."""
        ds = self.get(name, [SAVED_MOUNTPOINT])
        saved = ds.user.get(SAVED_MOUNTPOINT)
        if saved is None:
            return
        if saved == "-inherit-":
            self.inherit(name, "mountpoint")
        else:
            self.set_props(name, {"mountpoint": saved})
        self.inherit(name, SAVED_MOUNTPOINT)


def _opts(props: Mapping[str, str] | None) -> list[str]:
    argv: list[str] = []
    for prop, value in (props or {}).items():
        if ":" in prop:
            zprops.validate_value(prop, value)
        argv += ["-o", f"{prop}={value}"]
    return argv


# --- parsers (pure; unit-tested on recorded output of both dialects) ---------------------
def parse_features(text: str) -> dict[str, str]:
    """``feature@NAME -> state`` rows of ``zpool get -H -o property,value all`` (OpenZFS; zfs-fuse's
    pools have none)."""
    found = {}
    for line in text.splitlines():
        prop, _, value = line.partition("\t")
        if prop.startswith("feature@"):
            found[prop[len("feature@") :]] = value.strip()
    return found


def only_missing(stderr: str) -> bool:
    """Whether every line of a failed read's ``stderr`` says a dataset does not exist (the
    others were read)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return bool(lines) and all(classify(line) is ZfsNotFound for line in lines)


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return parse_size(value)


def parse_size(text: str) -> int:
    """Parse zfs's human sizes (``1016M``, ``2.18G``, ``512``) into bytes."""
    text = text.strip()
    if text in ("", "-"):
        return 0
    units = "BKMGTPE"
    suffix = text[-1].upper()
    if suffix in units and not text[-1].isdigit():
        return int(float(text[:-1]) * (1024 ** units.index(suffix)))
    return int(float(text))


def parse_get(text: str) -> list[Dataset]:
    """Records from ``zfs get -Hp -o name,property,value,source`` output."""
    rows: dict[str, dict[str, str]] = {}
    user: dict[str, dict[str, str]] = {}
    local: dict[str, set[str]] = {}
    for line in text.splitlines():
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) < 4:
            continue
        name, prop, source = fields[0], fields[1], fields[-1]
        value = "\t".join(fields[2:-1])
        rows.setdefault(name, {})
        user.setdefault(name, {})
        local.setdefault(name, set())
        if ":" in prop:
            if source in ("local", "received") and value != "-":
                user[name][prop] = value
            continue
        rows[name][prop] = value
        if source in ("local", "received"):
            local[name].add(prop)
    out = []
    for name, p in rows.items():
        if "type" not in p:
            continue
        out.append(
            Dataset(
                name=name,
                type=p["type"],
                origin=_opt(p.get("origin")),
                createtxg=_int(p.get("createtxg", "0")),
                creation=_int(p.get("creation", "0")),
                used=_int(p.get("used", "0")),
                available=None if _opt(p.get("available")) is None else _int(p["available"]),
                referenced=_int(p.get("referenced", "0")),
                mountpoint=_opt(p.get("mountpoint")),
                canmount=_opt(p.get("canmount")),
                mounted=None if _opt(p.get("mounted")) is None else p["mounted"] == "yes",
                user=user[name],
                local=frozenset(local[name]),
            )
        )
    out.sort(key=lambda d: (d.createtxg, d.name))
    return out


def _opt(value: str | None) -> str | None:
    return None if value in (None, "-", "") else value


def parse_zpool_get(text: str, name: str) -> Pool:
    """A pool from OpenZFS ``zpool get -Hp -o name,property,value size,free,bootfs,health,freeing``."""
    p: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and fields[0] == name:
            p[fields[1]] = fields[2]
    if not p:
        raise ZfsNotFound(f"cannot open '{name}': no such pool")
    freeing = _opt(p.get("freeing"))
    return Pool(
        name,
        _int(p.get("size", "0")),
        _int(p.get("free", "0")),
        _opt(p.get("bootfs")),
        p.get("health", "?"),
        0 if freeing is None else _int(freeing),
    )


def parse_zpool_list(text: str, name: str) -> Pool:
    """A pool from zfs-fuse ``zpool list -H -o name,size,free,bootfs,health`` (human sizes)."""
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) >= 5 and fields[0] == name:
            return Pool(name, parse_size(fields[1]), parse_size(fields[2]), _opt(fields[3]), fields[4])
    raise ZfsNotFound(f"cannot open '{name}': no such pool")
