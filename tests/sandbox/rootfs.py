"""A debootstrapped minbase Debian root with the sandbox repository, cached as a tarball.

The tarball lives outside the sandbox directory (``/var/cache/apt-clone-sandbox`` or
``$APT_CLONE_SANDBOX_CACHE``), keyed by suite, architecture and recipe version, so that
every sandbox after the first unpacks in seconds instead of debootstrapping again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence

from apt_clone.chroot import chroot_environment
from apt_clone.errors import OperationFailed
from apt_clone.runner import DEFAULT_RUNNER, Runner
from apt_clone.system import mounts_under

from . import repo

DEFAULT_MIRROR = "http://deb.debian.org/debian"
TRIM_PATHS = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale")
DPKG_EXCLUDES = """# apt-clone sandbox: keep the root small
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
"""


def cache_dir() -> str:
    return os.environ.get("APT_CLONE_SANDBOX_CACHE", "/var/cache/apt-clone-sandbox")


def host_codename() -> str:
    """The suite a sandbox gets by default: ``$APT_CLONE_SANDBOX_SUITE``, else the host's own."""
    if os.environ.get("APT_CLONE_SANDBOX_SUITE"):
        return os.environ["APT_CLONE_SANDBOX_SUITE"]
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VERSION_CODENAME="):
                    return line.split("=", 1)[1].strip().strip('"') or "bookworm"
    except OSError:
        pass
    return "bookworm"


def _arch(runner: Runner) -> str:
    result = runner.run(["dpkg", "--print-architecture"])
    return result.stdout.strip() if result.ok else "amd64"


def tarball_path(suite: str, runner: Runner = DEFAULT_RUNNER, extra: Sequence[str] = ()) -> str:
    """The cached tarball; ``extra``: packages of the archive (main and contrib) it also holds."""
    tag = "-x" + hashlib.sha1(" ".join(sorted(extra)).encode()).hexdigest()[:8] if extra else ""
    return os.path.join(cache_dir(), f"rootfs-{suite}-{_arch(runner)}-minbase-r{repo.RECIPE_VERSION}{tag}.tar")


def remove_tree(path: str, runner: Runner = DEFAULT_RUNNER) -> None:
    """Remove a build tree, detaching first what a killed debootstrap or chroot left mounted in
    it (its /proc, /sys, a bind of the host's /dev): removing through those would delete the
    host's device nodes. Nothing is removed while something stays mounted there."""
    for mount in mounts_under(path):
        runner.run(["umount", "-l", mount.mountpoint])
    if mounts_under(path):
        raise OperationFailed(f"cannot remove {path}: something is still mounted under it")
    shutil.rmtree(path, ignore_errors=True)


def _check(result_ok: bool, what: str, detail: str) -> None:
    if not result_ok:
        raise OperationFailed(f"{what}: {detail}")


def ensure_tarball(  # type: ignore[no-untyped-def]
    suite: str, mirror: str = DEFAULT_MIRROR, runner: Runner = DEFAULT_RUNNER, log=print, extra: Sequence[str] = ()
) -> str:
    """The cached root tarball for ``suite`` (with the ``extra`` packages), built first if missing."""
    path = tarball_path(suite, runner, extra)
    if os.path.exists(path):
        return path
    os.makedirs(cache_dir(), exist_ok=True)
    build = path + ".build"
    if os.path.exists(build):
        remove_tree(build, runner)
    debs = os.path.join(cache_dir(), "debs")
    os.makedirs(debs, exist_ok=True)
    log(f"sandbox: debootstrap {suite} (minbase) into the cache; later sandboxes reuse it")
    # initramfs-tools: upgrades in a clone make initramfs images there (apt_clone.apt.bootfiles).
    include = ",".join(["initramfs-tools", *extra])
    argv = ["debootstrap", "--variant=minbase", "--components=main,contrib", f"--include={include}",
            f"--cache-dir={debs}", suite, build]  # fmt: skip
    result = runner.run([*argv, mirror])
    _check(
        result.ok,
        "debootstrap failed",
        result.stderr.strip().splitlines()[-1] if result.stderr.strip() else result.error_line(),
    )
    try:
        customise(build, runner)
        part = path + ".part"
        result = runner.run(["tar", "--numeric-owner", "-C", build, "-cf", part, "."])
        _check(result.ok, "tar failed", result.error_line())
        os.replace(part, path)
    finally:
        remove_tree(build, runner)
    return path


def customise(root: str, runner: Runner) -> None:
    """Point apt at the local repository only, install the initial packages, trim."""
    with open(os.path.join(root, "etc/dpkg/dpkg.cfg.d/apt-clone-sandbox"), "w", encoding="utf-8") as f:
        f.write(DPKG_EXCLUDES)
    for rel in TRIM_PATHS:
        shutil.rmtree(os.path.join(root, rel), ignore_errors=True)
    for rel in ("etc/apt/sources.list",):
        if os.path.exists(os.path.join(root, rel)):
            os.unlink(os.path.join(root, rel))
    sources_d = os.path.join(root, repo.SOURCES_DIR)
    for name in os.listdir(sources_d):
        os.unlink(os.path.join(sources_d, name))
    with open(os.path.join(root, "etc/hostname"), "w", encoding="utf-8") as f:
        f.write("apt-clone-sandbox\n")
    initial = repo.build_repo(root, runner)
    repo.enable_suite(root, "stable")
    with chroot_environment(root):
        debs = ["/" + os.path.relpath(deb, root) for deb in initial.values()]
        result = runner.run(["chroot", root, "dpkg", "-i", *debs])
        _check(result.ok, "dpkg -i of the initial sandbox packages failed", result.error_line())
        result = runner.run(["chroot", root, "apt-get", "-q", "update"])
        _check(result.ok, "apt-get update in the sandbox root failed", result.error_line())
        runner.run(["chroot", root, "apt-get", "clean"])
    for rel in ("var/cache/apt/pkgcache.bin", "var/cache/apt/srcpkgcache.bin"):
        if os.path.exists(os.path.join(root, rel)):
            os.unlink(os.path.join(root, rel))


def unpack(tarball: str, target: str, runner: Runner = DEFAULT_RUNNER) -> None:
    result = runner.run(["tar", "--numeric-owner", "-xpf", tarball, "-C", target])
    _check(result.ok, f"unpacking {tarball} failed", result.error_line())


def os_title(root: str) -> str:
    """``PRETTY_NAME`` of the root's os-release, e.g. "Debian GNU/Linux 12 (bookworm)"."""
    for rel in ("etc/os-release", "usr/lib/os-release"):
        try:
            with open(os.path.join(root, rel), encoding="utf-8") as f:
                for line in f:
                    if line.startswith("PRETTY_NAME="):
                        return line.split("=", 1)[1].strip().strip('"')
        except OSError:
            continue
    return "Debian GNU/Linux"
