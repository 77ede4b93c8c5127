"""The ESP's GRUB stub, as Debian's grub-install writes it with shim-signed, and the GRUB home
it names."""

from __future__ import annotations

import os
from pathlib import Path

from apt_clone.boot import esp
from apt_clone.boot.layout import stub_checkpoint
from apt_clone.system import ManagedSystem

ZFS_STUB = (
    "search.fs_uuid 4f1b5e2c9a0d7e36 root \nset prefix=($root)'/BOOT/debian@/grub'\nconfigfile $prefix/grub.cfg\n"
)
EXT_STUB = "search.fs_uuid 6e0f5d0b-2a3c-4a1e-9d55-0d6c1a9f7b21 root hd0,gpt2 \nset prefix=($root)'/boot/grub'\n"


def test_a_zfs_stub_names_a_dataset_and_a_directory():
    stub = esp.parse(ZFS_STUB, "/boot/efi/EFI/debian/grub.cfg")
    assert stub is not None and stub.uuid == "4f1b5e2c9a0d7e36"
    assert (stub.prefix, stub.dataset, stub.directory) == ("/BOOT/debian@/grub", "BOOT/debian", "/grub")
    ext = esp.parse(EXT_STUB, "x")
    assert ext is not None and (ext.dataset, ext.directory) == (None, "/boot/grub")
    assert esp.parse("configfile /grub.cfg\n", "x") is None


def test_the_stub_names_the_home_checkpoint(tmp_path):
    system = ManagedSystem(str(tmp_path), "rpool/ROOT/debian", boot_dataset="bpool/BOOT/debian")
    assert system.boot_container == "bpool/BOOT"
    stub = esp.parse(ZFS_STUB.replace("BOOT/debian", "BOOT/rootfs-nmu-003"), "x")
    assert stub_checkpoint(stub, system) == "rootfs-nmu-003"
    assert stub_checkpoint(esp.parse(ZFS_STUB.replace("/BOOT/debian@", "/grub@"), "x"), system) is None  # bpool/grub
    in_root = esp.parse(ZFS_STUB.replace("/BOOT/debian@/grub", "/ROOT/other@/boot/grub"), "x")
    assert stub_checkpoint(in_root, system) == "other"


def test_the_stub_is_read_from_the_esp_never_through_a_link(tmp_path):
    vendor = tmp_path / "boot/efi/EFI/debian"
    vendor.mkdir(parents=True)
    (vendor / "grub.cfg").write_text(ZFS_STUB)
    (tmp_path / "boot/efi/EFI/BOOT").mkdir()
    stub = esp.read_stub(str(tmp_path))
    assert stub is not None and stub.path == str(vendor / "grub.cfg")
    os.unlink(vendor / "grub.cfg")
    (tmp_path / "elsewhere.cfg").write_text(ZFS_STUB)
    os.symlink(tmp_path / "elsewhere.cfg", vendor / "grub.cfg")
    assert esp.read_stub(str(tmp_path)) is None
    os.unlink(vendor / "grub.cfg")
    (vendor / "grub.cfg").write_text("x" * (esp.STUB_MAX + 1))
    assert esp.read_stub(str(tmp_path)) is None
    assert esp.read_stub(str(tmp_path / "no-such-root")) is None


def _tree(top) -> dict[str, bytes]:
    return {str(p.relative_to(top)): p.read_bytes() for p in sorted(top.rglob("*")) if p.is_file()}


def test_the_esp_is_kept_and_put_back_byte_for_byte(tmp_path):
    root, part = tmp_path / "root", tmp_path / "esp"
    (part / "EFI/debian").mkdir(parents=True)
    (part / "EFI/BOOT").mkdir()
    (part / "EFI/debian/grubx64.efi").write_bytes(b"\x00grub 2.12" * 1000)
    (part / "EFI/debian/grub.cfg").write_text(ZFS_STUB)
    (part / "EFI/BOOT/BOOTX64.EFI").write_bytes(b"shim")
    before = _tree(part)
    assert sorted(esp.keep(str(root), str(part))) == ["BOOT/BOOTX64.EFI", "debian/grub.cfg", "debian/grubx64.efi"]
    assert esp.keep(str(root), str(part)) == []  # nothing differs: nothing written
    # what a GRUB upgrade's grub-install does: a new binary, a new file, one gone
    (part / "EFI/debian/grubx64.efi").write_bytes(b"\x00grub 2.14")
    (part / "EFI/debian/mmx64.efi").write_bytes(b"mok")
    (part / "EFI/BOOT/BOOTX64.EFI").unlink()
    (part / "EFI/BOOT").rmdir()
    (part / "EFI/new").mkdir()
    changed = esp.put_back(str(root), str(part))
    assert sorted(changed) == ["BOOT/BOOTX64.EFI", "debian/grubx64.efi", "debian/mmx64.efi"]
    assert _tree(part) == before and not (part / "EFI/new").exists()
    assert esp.put_back(str(tmp_path / "kept-nothing"), str(part)) == []


def test_a_link_in_the_kept_copy_is_never_followed(tmp_path):
    root, part = tmp_path / "root", tmp_path / "esp"
    (part / "EFI/debian").mkdir(parents=True)
    (part / "EFI/debian/grubx64.efi").write_bytes(b"grub")
    esp.keep(str(root), str(part))
    secret = tmp_path / "secret"
    secret.write_bytes(b"not for the ESP")
    os.symlink(secret, root / esp.KEPT_DIR / "EFI/debian/evil.efi")
    esp.put_back(str(root), str(part))
    assert not (part / "EFI/debian/evil.efi").exists()


# --- a boot loader upgraded in a clone (apt_clone.checkpoints.efi) ---------------------------


def _files(top: Path) -> dict[str, bytes]:
    return {str(p.relative_to(top)): p.read_bytes() for p in sorted(top.rglob("*")) if p.is_file()}


def test_only_grub_efi_and_shim_packages_are_boot_loader_changes():
    from apt_clone.checkpoints.efi import boot_loader_changes

    changed = ["ac-hello", "grub-efi-amd64", "shim-signed", "grub-common", "grub-pc", "grub-efi-amd64-signed"]
    assert boot_loader_changes(changed) == ["grub-efi-amd64", "grub-efi-amd64-signed", "shim-signed"]
    assert boot_loader_changes(["grub2-common", "linux-image-amd64"]) == []


def test_the_esp_and_grubs_directory_go_back_byte_for_byte_from_a_whole_copy_only(tmp_path, monkeypatch):
    from apt_clone.checkpoints import efi

    monkeypatch.setenv("APT_CLONE_STATE_DIR", str(tmp_path / "state"))
    esp_dir, home = tmp_path / "esp", tmp_path / "grub"
    for rel, data in (
        ("EFI/debian/grubx64.efi", b"grub 1"),
        ("EFI/debian/grub.cfg", b"stub"),
        ("EFI/BOOT/BOOTX64.EFI", b"s"),
    ):
        (esp_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (esp_dir / rel).write_bytes(data)
    (home / "x86_64-efi").mkdir(parents=True)
    (home / "x86_64-efi/normal.mod").write_bytes(b"mod 1")
    (home / "grub.cfg").write_bytes(b"menu")
    before = (_files(esp_dir), _files(home))
    assert efi.platform_of(str(home)) == "x86_64-efi"

    efi.save(str(esp_dir), str(home))
    (esp_dir / "EFI/debian/grubx64.efi").write_bytes(b"grub 2, larger")
    (esp_dir / "EFI/BOOT/BOOTX64.EFI").unlink()
    (esp_dir / "EFI/debian/mmx64.efi").write_bytes(b"new")
    (home / "x86_64-efi/aptclonevm.mod").write_bytes(b"new module")
    changed = efi.put_back(str(esp_dir), str(home))
    assert (_files(esp_dir), _files(home)) == before
    assert sorted(changed) == sorted(
        [
            "debian/grubx64.efi",
            "BOOT/BOOTX64.EFI",
            "debian/mmx64.efi",
            "x86_64-efi/aptclonevm.mod",
        ]  # under EFI/, under the home
    )

    efi.forget_saved()  # a copy that is not this operation's (or was interrupted) never goes back
    (esp_dir / "EFI/debian/grubx64.efi").write_bytes(b"grub 3")
    assert efi.put_back(str(esp_dir), str(home)) == []
    assert (esp_dir / "EFI/debian/grubx64.efi").read_bytes() == b"grub 3"
