"""The trial counter where grubenv is on ZFS: where it may be, GRUB's script, the setting."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from apt_clone import config
from apt_clone.boot import counter
from apt_clone.errors import UsageError
from apt_clone.system import Mount


def mounts(*rows: tuple[str, str]) -> list[Mount]:
    return [Mount(i, 1, mp, fstype, "/dev/vda2") for i, (mp, fstype) in enumerate(rows, 2)]


@pytest.mark.parametrize(("fstype", "module"), [("vfat", "fat"), ("ext4", "ext2"), ("ext2", "ext2")])
def test_a_filesystem_grub_writes_is_a_counter(fstype, module):
    found = counter.find("/boot/efi", mounts(("/", "zfs"), ("/boot", "zfs"), ("/boot/efi", fstype)))
    assert found == counter.Counter("/boot/efi", module)
    assert found.env == "/boot/efi/apt-clone/grubenv"


def test_nothing_grub_writes_is_no_counter_and_says_why():
    assert counter.find("/boot/efi", mounts(("/", "zfs"))) == "nothing is mounted at /boot/efi ([trial] counter)"
    assert "xfs, which GRUB does not write" in str(counter.find("/boot/efi", mounts(("/boot/efi", "xfs"))))
    assert "zfs, which GRUB does not write" in str(counter.find("/boot", mounts(("/boot", "zfs"))))
    assert counter.find("off", mounts(("/boot/efi", "vfat"))) == "[trial] counter is off"


@pytest.mark.skipif(shutil.which("grub-script-check") is None, reason="needs grub-common")
@pytest.mark.parametrize("module", ["fat", "ext2"])
def test_the_script_passes_grub_script_check_and_spends_a_try_in_the_block(tmp_path, module):
    text = counter.script(counter.Counter("/boot/efi", module), "1A2B-3C4D")
    path = tmp_path / counter.SCRIPT
    path.write_text(text)
    assert subprocess.run(["grub-script-check", str(path)]).returncode == 0
    assert f"insmod {module}" in text and "--fs-uuid --set=apt_clone_env '1A2B-3C4D'" in text
    assert 'load_env --file "(${apt_clone_env})/apt-clone/grubenv" apt_clone_trial apt_clone_tries' in text
    assert 'save_env --file "(${apt_clone_env})/apt-clone/grubenv" apt_clone_tries' in text


@pytest.mark.skipif(shutil.which("grub-editenv") is None, reason="needs grub-common")
def test_the_block_is_made_by_grub_editenv_and_a_link_is_refused(tmp_path):
    from apt_clone.errors import Refused

    place = counter.Counter(str(tmp_path), "ext2")
    counter.prepare(place)
    with open(place.env, "rb") as f:
        assert f.read().startswith(b"# GRUB Environment Block\n")
    os.unlink(place.env)
    os.symlink("/etc/passwd", place.env)
    with pytest.raises(Refused, match="unsafe file"):
        counter.prepare(place)


def test_the_setting_is_an_absolute_directory_or_off():
    assert config.parse("", "f").counter == "/boot/efi"
    assert config.parse("[trial]\ncounter = off\n", "f").counter == "off"
    assert config.parse("[trial]\ncounter = /boot/esp\n", "f").counter == "/boot/esp"
    for bad in ("boot/efi", "/boot/../etc", "/boot efi", "/boot/efi\\x"):
        with pytest.raises(UsageError, match="an absolute directory, or off"):
            config.parse(f"[trial]\ncounter = {bad}\n", "f")
