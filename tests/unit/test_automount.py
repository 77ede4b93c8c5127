"""Which checkpoint datasets mount by themselves (apt_clone.checkpoints.automount), on records alone."""

from __future__ import annotations

from apt_clone.checkpoints import automount
from apt_clone.zfs import Dataset

C = "rpool/ROOT"


def ds(
    name: str, canmount: str = "noauto", mounted: bool = False, mark: bool = False, mp: str | None = None
) -> Dataset:
    user = {automount.MARK: "on"} if mark else {}
    where = mp or ("/" + name.split("/", 3)[3] if name.count("/") >= 3 else "/")
    return Dataset(f"{C}/{name}", "filesystem", None, 1, 0, 0, None, 0, where, canmount, mounted, user=user)


class Recorder:
    def __init__(self) -> None:
        self.writes: dict[str, dict[str, str]] = {}

    def set_props(self, name: str, props: dict[str, str]) -> None:
        self.writes.setdefault(name, {}).update(props)


TREE = [
    ds("ubuntu", "on", True),
    ds("ubuntu/var", "on", True),
    ds("ubuntu/srv", "noauto"),  # a child its admin keeps noauto: never considered
    ds("nmu-001"),
    ds("nmu-001/var", mark=True),
    ds("home", "on", True, mp="/home"),  # data beside the checkpoints
]
ROOTS = [f"{C}/ubuntu", f"{C}/nmu-001"]


def test_activation_moves_on_to_the_next_defaults_children_and_no_root_keeps_it():
    zfs = Recorder()
    on = automount.of_default(TREE, ROOTS, f"{C}/nmu-001")
    assert on == {f"{C}/nmu-001/var"}
    automount.apply(zfs, TREE, ROOTS, on)  # type: ignore[arg-type]
    assert zfs.writes == {
        f"{C}/ubuntu": {"canmount": "noauto", automount.MARK: "on"},  # a root never mounts by itself
        f"{C}/ubuntu/var": {"canmount": "noauto", automount.MARK: "on"},  # gets it back when ubuntu boots next
        f"{C}/nmu-001/var": {"canmount": "on"},
    }


def test_an_undo_puts_back_exactly_what_was_on():
    zfs = Recorder()
    after = [
        ds("ubuntu", mark=True),
        ds("ubuntu/var", mark=True),
        ds("ubuntu/srv"),
        ds("nmu-001"),
        ds("nmu-001/var", "on", mark=True),
    ]
    automount.apply(zfs, after, ROOTS, automount.mounting(TREE, ROOTS))  # type: ignore[arg-type]
    assert zfs.writes == {
        f"{C}/ubuntu": {"canmount": "on"},
        f"{C}/ubuntu/var": {"canmount": "on"},
        f"{C}/nmu-001/var": {"canmount": "noauto"},
    }


def test_a_clone_never_mounts_by_itself_and_is_marked_when_its_origin_did():
    assert automount.new_props(ds("ubuntu/var", "on")) == {"canmount": "noauto", automount.MARK: "on"}
    assert automount.new_props(ds("ubuntu/srv")) == {"canmount": "noauto"}


def test_a_boot_of_another_checkpoint_swaps_the_defaults_children_for_its_own():
    booted_tree = [ds("ubuntu", mounted=False), ds("ubuntu/var", "on", True), ds("nmu-001", mounted=True),
                   ds("nmu-001/var", mark=True), ds("nmu-001/srv"),  # kept noauto by its admin
                   ds("home", "on", True, mp="/home")]  # fmt: skip
    others, own = automount.misplaced(booted_tree, ROOTS, f"{C}/nmu-001", "/")
    assert [d.name for d in others] == [f"{C}/ubuntu/var"] and [d.name for d in own] == [f"{C}/nmu-001/var"]
