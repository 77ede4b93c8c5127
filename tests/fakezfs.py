"""An in-memory ZFS behind apt-clone's ZfsBackend interface: datasets, snapshots, clones with
their origins, promote, rename, rollback, destroy with zfs's refusals, user properties, bootfs,
and space: what each dataset holds alone (``used``) against its pool's size.

For unit tests of the services that need no root and no pool. It follows OpenZFS's rules where
apt-clone depends on them (and the real backends are tested against real pools besides)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from apt_clone.zfs import (
    Dataset,
    Pool,
    ZfsBackend,
    ZfsBusy,
    ZfsError,
    ZfsExists,
    ZfsHasChildren,
    ZfsHasDependentClones,
    ZfsInvalid,
    ZfsNotFound,
)
from apt_clone.zfs import props as zprops

NATIVE = ("mountpoint", "canmount")


@dataclass
class Node:
    name: str
    type: str
    txg: int
    origin: str | None = None
    native: dict[str, str] = field(default_factory=dict)
    user: dict[str, str] = field(default_factory=dict)
    mounted: bool = False
    used: int = 0
    """Bytes it holds alone (freed with it)."""


class FakeZfs(ZfsBackend):
    """Pools are made with :meth:`add_pool`; every mutation raises what zfs would refuse with."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.bootfs: dict[str, str | None] = {}
        self.txg = 0
        self.calls: list[str] = []
        self.size: dict[str, int] = {}
        self.reserve_taken: dict[str, int] = {}
        """Bytes a pool's writes took from ZFS's own reserve: ``available`` reads 0 while the
        pool is into it, however far."""
        self.freeing: dict[str, int] | None = None
        """Set (to ``{}``): destroys free in the background, as OpenZFS's do; what they hold
        stays out of ``available`` and counts in the pool's ``freeing`` (never done here)."""

    # --- set-up ----------------------------------------------------------------------------
    def add_pool(self, name: str, mountpoint: str = "none", size: int = 1 << 30) -> None:
        self.bootfs[name] = None
        self.size[name] = size
        self._add(Node(name, "filesystem", self._next(), native={"mountpoint": mountpoint}))

    def _next(self) -> int:
        self.txg += 1
        return self.txg

    def _add(self, node: Node) -> None:
        self.nodes[node.name] = node

    def _need(self, name: str) -> Node:
        node = self.nodes.get(name)
        if node is None:
            raise ZfsNotFound(f"cannot open '{name}': dataset does not exist")
        return node

    # --- reads -----------------------------------------------------------------------------
    def _mountpoint(self, node: Node) -> str | None:
        if node.type == "snapshot":
            return None
        if "mountpoint" in node.native:
            return node.native["mountpoint"]
        parent, _, last = node.name.rpartition("/")
        above = self._mountpoint(self.nodes[parent]) if parent in self.nodes else None
        if above in (None, "none", "legacy"):
            return above
        return above.rstrip("/") + "/" + last

    def _available(self, pool: str) -> int:
        held = sum(n.used for n in self._under(pool)) + (self.freeing or {}).get(pool, 0)
        return max(0, self.size[pool] - held - self.reserve_taken.get(pool, 0))

    def _record(self, node: Node, user_props: Sequence[str]) -> Dataset:
        pool = node.name.split("/")[0].split("@")[0]
        top = node.name == pool
        return Dataset(
            name=node.name,
            type=node.type,
            origin=node.origin,
            createtxg=node.txg,
            creation=node.txg,
            used=sum(n.used for n in self._under(pool)) if top else node.used,
            available=None if node.type == "snapshot" else self._available(pool),
            referenced=0,
            mountpoint=self._mountpoint(node),
            canmount=None if node.type == "snapshot" else node.native.get("canmount", "on"),
            mounted=None if node.type == "snapshot" else node.mounted,
            user={k: v for k, v in node.user.items() if k in user_props},
            local=frozenset(node.native),
        )

    def _under(self, root: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.name == root or n.name.startswith((root + "/", root + "@"))]

    def list_tree(self, root: str, user_props: Sequence[str] = ()) -> list[Dataset]:
        top = self._need(root)
        rest = sorted((n for n in self._under(root) if n is not top), key=lambda n: (n.txg, n.name))
        return [self._record(n, user_props) for n in (top, *rest)]

    def get(self, name: str, user_props: Sequence[str] = ()) -> Dataset:
        return self._record(self._need(name), user_props)

    def pool(self, name: str) -> Pool:
        if name not in self.bootfs:
            raise ZfsNotFound(f"cannot open '{name}': no such pool")
        return Pool(name, 1 << 30, 1 << 29, self.bootfs[name], "ONLINE", (self.freeing or {}).get(name, 0))

    def pools(self) -> list[str]:
        return sorted(self.bootfs)

    # --- mutations -------------------------------------------------------------------------
    def _split(self, props: Mapping[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:
        native, user = {}, {}
        for key, value in (props or {}).items():
            if ":" in key:
                zprops.validate_value(key, value)
                user[key] = value
            elif key in NATIVE:
                native[key] = value
            else:
                raise ZfsInvalid(f"cannot set property '{key}': not supported by the fake")
        return native, user

    def create(self, name: str, props: Mapping[str, str] | None = None) -> None:
        self.calls.append(f"create {name}")
        if name in self.nodes:
            raise ZfsExists(f"cannot create '{name}': dataset already exists")
        self._need(name.rsplit("/", 1)[0])
        native, user = self._split(props)
        self._add(Node(name, "filesystem", self._next(), native=native, user=user))

    def snapshot(self, name: str, *, recursive: bool = False, props: Mapping[str, str] | None = None) -> None:
        self.calls.append(f"snapshot {name}")
        fs, _, tag = name.partition("@")
        if not tag:
            raise ZfsInvalid(f"not a snapshot name: {name}")
        self._need(fs)
        native, user = self._split(props)
        if native:
            raise ZfsInvalid(f"cannot create snapshot '{name}': native properties")
        targets = [n.name for n in self._under(fs) if n.type == "filesystem"] if recursive else [fs]
        if any(f"{t}@{tag}" in self.nodes for t in targets):
            raise ZfsExists(f"cannot create snapshot '{name}': dataset already exists")
        txg = self._next()  # one instant for all of them
        for target in targets:
            self._add(Node(f"{target}@{tag}", "snapshot", txg, user=dict(user)))

    def clone(self, snapshot: str, target: str, props: Mapping[str, str] | None = None) -> None:
        self.calls.append(f"clone {snapshot} {target}")
        if self._need(snapshot).type != "snapshot":
            raise ZfsInvalid(f"cannot clone '{snapshot}': not a snapshot")
        if target in self.nodes:
            raise ZfsExists(f"cannot create '{target}': dataset already exists")
        self._need(target.rsplit("/", 1)[0])
        native, user = self._split(props)
        self._add(Node(target, "filesystem", self._next(), origin=snapshot, native=native, user=user))

    def promote(self, name: str) -> None:
        """The clone takes its origin's snapshots up to the one it was cloned from."""
        self.calls.append(f"promote {name}")
        clone = self._need(name)
        if not clone.origin:
            raise ZfsInvalid(f"cannot promote '{name}': not a cloned filesystem")
        source, _, _ = clone.origin.partition("@")
        limit = self.nodes[clone.origin].txg
        moving = [n for n in self.nodes.values() if n.name.startswith(source + "@") and n.txg <= limit]
        if any(f"{name}@{n.name.split('@', 1)[1]}" in self.nodes for n in moving):
            raise ZfsExists(f"cannot promote '{name}': a snapshot name is taken")
        renamed = {}
        for snap in moving:
            new = f"{name}@{snap.name.split('@', 1)[1]}"
            del self.nodes[snap.name]
            snap.name = new
            self._add(snap)
            renamed[f"{source}@{new.split('@', 1)[1]}"] = new
        old_origin = self.nodes[source].origin
        self.nodes[source].origin = renamed[clone.origin]
        clone.origin = old_origin
        for node in self.nodes.values():
            if node.origin in renamed and node is not self.nodes[source]:
                node.origin = renamed[node.origin]

    def _dependants(self, names: set[str]) -> list[str]:
        return [n.name for n in self.nodes.values() if n.origin in names and n.name not in names]

    def destroy(self, name: str, *, recursive: bool = False) -> None:
        self.calls.append(f"destroy {name}")
        node = self._need(name)
        if node.type == "snapshot":
            tag = name.split("@", 1)[1]
            fs = name.split("@", 1)[0]
            doomed = {f"{n.name}@{tag}" for n in self._under(fs) if n.type == "filesystem"} if recursive else {name}
            doomed &= set(self.nodes)
        else:
            doomed = {n.name for n in self._under(name)}
            if not recursive and doomed != {name}:
                raise ZfsHasChildren(f"cannot destroy '{name}': filesystem has children")
        clones = self._dependants(doomed)
        if clones:
            raise ZfsHasDependentClones(f"cannot destroy '{name}': filesystem has dependent clones: {clones[0]}")
        for gone in doomed:
            if self.freeing is not None:
                pool = gone.split("/")[0].split("@")[0]
                self.freeing[pool] = self.freeing.get(pool, 0) + self.nodes[gone].used
            del self.nodes[gone]
        for pool, fs in self.bootfs.items():
            if fs in doomed:
                self.bootfs[pool] = None

    def rename(self, old: str, new: str) -> None:
        self.calls.append(f"rename {old} {new}")
        self._need(old)
        if new in self.nodes:
            raise ZfsExists(f"cannot rename to '{new}': dataset already exists")
        if "@" not in old:
            self._need(new.rsplit("/", 1)[0])
        moved = {}
        for node in sorted(self._under(old) if "@" not in old else [self.nodes[old]], key=lambda n: n.name):
            renamed = new + node.name[len(old) :]
            del self.nodes[node.name]
            moved[node.name] = renamed
            node.name = renamed
            self._add(node)
        for node in self.nodes.values():
            if node.origin in moved:
                node.origin = moved[node.origin]
        for pool, fs in self.bootfs.items():
            if fs in moved:
                self.bootfs[pool] = moved[fs]

    def rollback(self, snapshot: str, *, destroy_newer: bool = False) -> None:
        self.calls.append(f"rollback {snapshot}")
        snap = self._need(snapshot)
        fs = snapshot.split("@", 1)[0]
        newer = [n.name for n in self.nodes.values() if n.name.startswith(fs + "@") and n.txg > snap.txg]
        if newer and not destroy_newer:
            raise ZfsError(f"cannot rollback to '{snapshot}': more recent snapshots exist ({newer[0]})")
        for name in newer:
            self.destroy(name)

    def set_props(self, name: str, props: Mapping[str, str]) -> None:
        self.calls.append(f"set {name} {','.join(props)}")
        node = self._need(name)
        native, user = self._split(props)
        node.native.update(native)
        node.user.update(user)

    def inherit(self, name: str, prop: str) -> None:
        node = self._need(name)
        node.user.pop(prop, None)
        node.native.pop(prop, None)

    def mount(self, name: str) -> None:
        node = self._need(name)
        if node.mounted:
            raise ZfsBusy(f"cannot mount '{name}': filesystem already mounted")
        node.mounted = True

    def unmount(self, name: str) -> None:
        self._need(name).mounted = False

    def set_bootfs(self, pool: str, dataset: str | None) -> None:
        self.calls.append(f"bootfs {pool} {dataset}")
        if dataset is not None:
            self._need(dataset)
        self.bootfs[pool] = dataset

    def mount_at(self, name: str, directory: str, *, readonly: bool = False) -> None:
        self._need(name).mounted = True

    def unmount_at(self, name: str, directory: str, *, restore: bool = True) -> None:
        self._need(name).mounted = False

    # --- for assertions --------------------------------------------------------------------
    def state(self) -> list[tuple[str, str | None]]:
        """(name, origin) of every dataset and snapshot, sorted: what "nothing changed" compares."""
        return sorted((n.name, n.origin) for n in self.nodes.values())
