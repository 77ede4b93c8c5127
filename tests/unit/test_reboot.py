"""Reboot detection as Debian sees it: only what a reboot alone replaces."""

from __future__ import annotations

from apt_clone.apt.plan import Change
from apt_clone.apt.reboot import describe, reasons, script_reason
from apt_clone.config import DEFAULT_PACKAGES


def _names(*changes: tuple[str, str]) -> list[str]:
    return [n for n, _ in reasons([Change(n, a, None, None) for n, a in changes], DEFAULT_PACKAGES)]


def test_fresh_installs_openssl_libssl_and_grub_need_no_reboot():
    # the seed's Example #3 (apache2) with what it pulls in on Debian 13
    assert (
        _names(("apache2", "install"), ("openssl", "install"), ("libssl3t64", "install"), ("libapr1t64", "install"))
        == []
    )
    assert (
        _names(("openssl", "upgrade"), ("libssl3t64", "upgrade"), ("grub-pc", "upgrade"), ("grub-common", "upgrade"))
        == []
    )
    assert _names(("systemd-timesyncd", "install"), ("libc6-dev", "upgrade"), ("zfsutils-linux", "upgrade")) == []


def test_what_only_a_reboot_replaces_needs_one():
    got = _names(
        ("libc6", "upgrade"),
        ("systemd", "upgrade"),
        ("dbus", "upgrade"),
        ("initramfs-tools", "upgrade"),
        ("zfs-dkms", "upgrade"),
        ("intel-microcode", "upgrade"),
        ("linux-image-6.12.48+deb13-amd64", "upgrade"),
        ("udev", "remove"),
        ("libc6:amd64", "downgrade"),
    )
    assert len(got) == 9


def test_a_new_kernel_is_one_to_boot_but_a_new_library_is_not():
    assert _names(("linux-image-6.12.57+deb13-amd64", "install")) == ["linux-image-6.12.57+deb13-amd64"]
    assert _names(("libsystemd0", "install"), ("udev", "install")) == []


def test_the_patterns_come_from_the_config_and_the_reason_is_said():
    found = reasons([Change("nginx", "upgrade", "1", "2")], ("nginx*",))
    assert describe(found + [script_reason("ac-kernel")]) == (
        "nginx (upgrade: only a reboot replaces it); ac-kernel (its maintainer script asks for a reboot)"
    )
