"""Where GRUB's directory is, from mountinfo: shared, or a checkpoint's own copy (pure functions)."""

from __future__ import annotations

from apt_clone.boot.layout import GrubHome, holder_of, in_checkpoint, place_of
from apt_clone.system import ManagedSystem, Mount
from apt_clone.zfs.cli import parse_features

SYSTEM = ManagedSystem("/", "rpool/ROOT/debian-2", "bpool/BOOT/debian-2")


def _mounts(*rows: tuple[str, str, str]) -> list[Mount]:
    return [Mount(i, 1, mp, fstype, source) for i, (mp, fstype, source) in enumerate(rows, 2)]


def test_the_deepest_mount_holds_a_path_and_a_later_one_on_top_wins():
    mounts = _mounts(("/", "zfs", "rpool/ROOT/debian-2"), ("/boot", "zfs", "bpool/BOOT/debian-2"),
                     ("/boot/efi", "vfat", "/dev/sda1"), ("/boot", "zfs", "bpool/BOOT/other"))  # fmt: skip
    assert place_of("/boot/grub", mounts).dataset == "bpool/BOOT/other"
    assert place_of("/boot/efi/EFI", mounts).source == "/dev/sda1" and place_of("/boot/efi", mounts).dataset is None
    assert place_of("/var/log", mounts).dataset == "rpool/ROOT/debian-2"


def test_checkpoint_datasets_and_the_home_copy():
    assert in_checkpoint("rpool/ROOT/debian-2/var", SYSTEM) and in_checkpoint("bpool/BOOT/x", SYSTEM)
    assert not in_checkpoint("rpool/var/log", SYSTEM) and not in_checkpoint("bpool/grub", SYSTEM)
    place = place_of("/boot/grub", _mounts(("/boot", "zfs", "bpool/BOOT/debian-2")))
    assert holder_of(GrubHome("checkpoint", "/boot/grub", place, "debian-1"), SYSTEM) == "bpool/BOOT/debian-1"
    root_place = place_of("/boot/grub", _mounts(("/", "zfs", "rpool/ROOT/debian-2")))
    assert holder_of(GrubHome("checkpoint", "/boot/grub", root_place, "debian-1"), SYSTEM) == "rpool/ROOT/debian-1"


def test_pool_features_from_zpool_get():
    text = "size\t1G\nfeature@async_destroy\tenabled\nfeature@encryption\tactive\nfeature@zstd_compress\tdisabled\n"
    assert parse_features(text) == {"async_destroy": "enabled", "encryption": "active", "zstd_compress": "disabled"}
    assert parse_features("size\t1G\nversion\t23\n") == {}  # zfs-fuse: no feature flags


def test_check_notes_an_encrypted_root_and_its_key():
    from types import SimpleNamespace

    from apt_clone.checkpoints import check
    from apt_clone.zfs import Dataset

    roots = {"rpool/ROOT/debian-2": "rpool", "rpool/ROOT/clone": "rpool", "rpool/ROOT/dup": "rpool/ROOT/dup"}

    class Zfs:
        def native(self, name, props):
            if "keylocation" in props:
                return {"keylocation": "prompt"}
            locked = "unavailable" if name == "rpool/ROOT/dup" else "available"
            return {"encryptionroot": roots[name], "keystatus": locked}

    def fs(name: str) -> Dataset:
        return Dataset(
            name, "filesystem", None, 1, 0, 0, None, 0, "/", "noauto", False, local=frozenset({"mountpoint"})
        )

    tree = [fs("rpool/ROOT"), *(fs(n) for n in roots)]
    found: list = []
    check._encryption(SimpleNamespace(zfs=Zfs(), system=SYSTEM), tree, found.append)  # type: ignore[arg-type]
    note, own, locked = found
    assert note.level == "note" and "encryption root rpool, key prompt" in note.text
    assert "stays in that encryption root" in note.text
    assert own.level == "risk" and "'dup' is its own encryption root" in own.text and "change-key -i" in own.fix
    assert locked.level == "risk" and "key of checkpoint 'dup' is not loaded" in locked.text
    assert locked.fix == "zfs load-key rpool/ROOT/dup"
