"""Which datasets of the checkpoints mount by themselves at boot (``canmount=on``).

Ubuntu's installer and zsys give a root and its children ``canmount=on``. A clone made with that
would be mounted over the running system (``zfs clone`` mounts it; on OpenZFS 2.2+ over a
non-empty directory too), and at the next boot ``zfs mount -a`` would mount every checkpoint's
children over the booted one's. So:

- every dataset of a new checkpoint is ``canmount=noauto`` from the moment it exists; those whose
  origin had ``on`` carry :data:`MARK` (``on``: it mounts by itself when its checkpoint boots
  next);
- on activation ``canmount=on`` moves to the children of what boots next, and every other
  checkpoint's go ``noauto`` (marked, so that they get it back when theirs boots next);
- a checkpoint's root never mounts by itself: the initramfs (or the boot menu) mounts the root it
  boots whatever its ``canmount``, and one left ``on`` is what ``zfs mount -a`` would mount over
  a trial boot of another checkpoint;
- a boot of anything else (a trial, a pick in GRUB's menu) gets its own children mounted and no
  other checkpoint's, by ``apt-clone-boot.service`` (:func:`apt_clone.trial.boot_started`).

Datasets beside the checkpoints (a ``home`` in the container) are never considered.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..zfs import Dataset, ZfsBackend, props

MARK = props.key("canmount")
"""``on`` on a checkpoint's dataset that mounts by itself whenever its checkpoint boots next."""


def _inside(tree: Sequence[Dataset], roots: Sequence[str]) -> Iterator[tuple[Dataset, str]]:
    """Each filesystem of the checkpoints (``roots`` and what is below them), with its root."""
    for ds in tree:
        if ds.is_snapshot:
            continue
        root = next((r for r in roots if ds.name == r or ds.name.startswith(r + "/")), None)
        if root is not None:
            yield ds, root


def _considered(tree: Sequence[Dataset], roots: Sequence[str]) -> Iterator[tuple[Dataset, str]]:
    """The datasets whose automatic mount apt-clone moves: ``canmount=on`` now, or marked."""
    for ds, root in _inside(tree, roots):
        if ds.canmount == "on" or ds.user.get(MARK) == "on":
            yield ds, root


def mounting(tree: Sequence[Dataset], roots: Sequence[str]) -> set[str]:
    """The checkpoints' datasets that are ``canmount=on`` now (what an undo puts back)."""
    return {ds.name for ds, _ in _considered(tree, roots) if ds.canmount == "on"}


def of_default(tree: Sequence[Dataset], roots: Sequence[str], default: str | None) -> set[str]:
    """What mounts by itself when ``default`` boots next: its children that are marked or on."""
    return {ds.name for ds, root in _considered(tree, roots) if root == default and ds.name != root}


def new_props(origin: Dataset) -> dict[str, str]:
    """What a new checkpoint's dataset cloned from ``origin`` carries: never mounted by itself,
    marked when its origin was."""
    return {"canmount": "noauto", **({MARK: "on"} if origin.canmount == "on" or origin.user.get(MARK) == "on" else {})}


def apply(zfs: ZfsBackend, tree: Sequence[Dataset], roots: Sequence[str], on: set[str]) -> list[str]:
    """Make exactly ``on`` of the considered datasets ``canmount=on`` and the others ``noauto``,
    marking each (a child gets ``on`` back when its checkpoint boots next, a root when an undo
    puts it back); the names changed. Setting ``canmount`` mounts and unmounts nothing."""
    changed = []
    for ds, _ in _considered(tree, roots):
        want = "on" if ds.name in on else "noauto"
        writes = {} if ds.canmount == want else {"canmount": want}
        if ds.user.get(MARK) != "on":  # still considered once noauto (an undo puts a root's back)
            writes[MARK] = "on"
        if writes:
            zfs.set_props(ds.name, writes)
            changed.append(ds.name)
    return changed


def misplaced(
    tree: Sequence[Dataset], roots: Sequence[str], booted: str, under: str
) -> tuple[list[Dataset], list[Dataset]]:
    """At boot, with ``booted`` the root running: another checkpoint's datasets mounted under the
    system's root directory ``under`` (deepest first: to unmount), and the booted checkpoint's own
    children that would mount by themselves were it the default (on, or marked) but are not
    mounted (parents first: to mount). A child its admin keeps ``noauto`` stays as it is."""
    prefix = under.rstrip("/") + "/"
    others, own = [], []
    for ds, root in _inside(tree, roots):
        if ds.name == root or not (ds.mountpoint or "").startswith(prefix):
            continue
        if root != booted and ds.mounted:
            others.append(ds)
        elif root == booted and not ds.mounted and (ds.canmount == "on" or ds.user.get(MARK) == "on"):
            own.append(ds)
    return sorted(others, key=lambda d: d.name, reverse=True), sorted(own, key=lambda d: d.name)
