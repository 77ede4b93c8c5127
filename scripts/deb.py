#!/usr/bin/python3
"""The Debian package, built and proven as an admin gets it.

  deb.py build   dpkg-buildpackage (source and binary) in a clean Debian 13 chroot as an
                 unprivileged user, then lintian --pedantic: no error, no warning. The results go
                 to dist/ (apt-clone-zfs_<version>_all.deb, the .dsc and .changes, lintian.txt).
  deb.py check   build, then install the .deb with apt into another clean Debian 13 chroot (its
                 Depends resolved from the archive), run apt-clone --version, --help and --steps
                 there with Debian's own python3 libraries, check what dpkg -L and the conffiles
                 hold and that the units are enabled, then purge it: only its own files and state go;
                 then the install route on a ZFS host chroot (install-route).
  deb.py install-route   scripts/install-debian-deps.sh in a Debian 13 chroot with zfsutils-linux
                 and zfs-initramfs installed changes none of its packages.

The two chroots come from tarballs cached in /var/cache/apt-clone-deb ($APT_CLONE_DEB_CACHE): a
debootstrapped trixie minbase (main and contrib), and that plus the Build-Depends and lintian,
keyed by debian/control. Needs root (debootstrap, chroot).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DIST = REPO / "dist"
CACHE = Path(os.environ.get("APT_CLONE_DEB_CACHE", "/var/cache/apt-clone-deb"))
SUITE = "trixie"
MIRROR = os.environ.get("APT_CLONE_MIRROR", "http://deb.debian.org/debian")
BASE_RECIPE = 1
"""Bumped when :func:`base_tarball` changes what it makes."""
BUILDER_UID = 2000
INSTALLS = (
    "/usr/bin/apt-clone",
    "/etc/grub.d/42_apt-clone",
    "/etc/default/grub.d/apt-clone.cfg",
    "/etc/apt-clone/apt-clone.conf",
    "/usr/lib/systemd/system/apt-clone-boot.service",
    "/usr/lib/systemd/system/apt-clone-trial.service",
    "/usr/share/man/man8/apt-clone.8.gz",
    "/usr/share/man/man5/apt-clone.conf.5.gz",
    "/usr/share/bash-completion/completions/apt-clone",
    "/etc/apt/apt.conf.d/80apt-clone",
    "/usr/libexec/apt-clone/hook-post",
    "/usr/lib/systemd/system/apt-clone-prune.service",
    "/usr/lib/systemd/system/apt-clone-prune.timer",
    "/usr/lib/systemd/system/apt-clone-trial-deadline.service",
)
"""What the package must install (issue 18, item 2; the APT hook: issue 20)."""
CONFFILES = (
    "/etc/apt-clone/apt-clone.conf",
    "/etc/grub.d/42_apt-clone",
    "/etc/default/grub.d/apt-clone.cfg",
    "/etc/apt/apt.conf.d/80apt-clone",
)
ENABLED = (
    "/etc/systemd/system/sysinit.target.wants/apt-clone-boot.service",
    "/etc/systemd/system/multi-user.target.wants/apt-clone-trial.service",
    "/etc/systemd/system/timers.target.wants/apt-clone-prune.timer",
    "/etc/systemd/system/sysinit.target.wants/apt-clone-trial-deadline.service",
)


def log(text: str) -> None:
    print(f"deb: {text}", flush=True)


def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    done: subprocess.CompletedProcess[str] = subprocess.run(argv, check=True, text=True, **kw)
    return done


def version() -> str:
    out = run(["dpkg-parsechangelog", "-l", str(REPO / "debian/changelog"), "-S", "Version"], capture_output=True)
    return out.stdout.strip()


# --- cached chroots ----------------------------------------------------------------------------
def base_tarball() -> Path:
    """A debootstrapped trixie minbase with main and contrib (zfsutils-linux is in contrib)."""
    out = CACHE / f"{SUITE}-minbase-r{BASE_RECIPE}.tar"
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    log(f"debootstrap {SUITE} (minbase) into the cache; later runs reuse it")
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="apt-clone-deb-base.") as tree:
        run(["debootstrap", "--variant=minbase", "--components=main,contrib", SUITE, tree, MIRROR],
            stdout=subprocess.DEVNULL)  # fmt: skip
        Path(tree, "etc/apt/apt.conf.d/90apt-clone-deb").write_text(
            'APT::Install-Recommends "false";\nAcquire::Languages "none";\n'
        )
        _pack(Path(tree), out)
    return out


def build_tarball() -> Path:
    """The base plus build-essential, the Build-Depends of debian/control, lintian and man-db."""
    base = base_tarball()
    key = hashlib.sha1((REPO / "debian/control").read_bytes() + base.name.encode()).hexdigest()[:10]
    out = CACHE / f"{SUITE}-build-{key}.tar"
    if out.exists():
        return out
    for old in CACHE.glob(f"{SUITE}-build-*.tar"):
        old.unlink()
    log("the build chroot: build-essential, the Build-Depends, lintian (cached by debian/control)")
    with chroot_from(base) as tree:
        (tree / "tmp/debian").mkdir()
        shutil.copy(REPO / "debian/control", tree / "tmp/debian/control")
        apt(tree, "update")
        apt(tree, "install", "-y", "build-essential", "lintian", "man-db", "fakeroot")
        apt(tree, "build-dep", "-y", "/tmp")
        apt(tree, "clean")
        shutil.rmtree(tree / "tmp/debian")
        run(["chroot", str(tree), "useradd", "-m", "-d", "/build", "-u", str(BUILDER_UID), "builder"])
        _pack(tree, out)
    return out


def zfs_host_tarball() -> Path:
    """The base standing in for a Debian 13 host whose root is on ZFS: zfsutils-linux and
    zfs-initramfs installed, and what building the package needs on the host (debootstrap,
    dpkg-dev), so that its install step has nothing to do."""
    base = base_tarball()
    out = CACHE / f"{SUITE}-zfs-host-r{BASE_RECIPE}.tar"
    if out.exists():
        return out
    log("the ZFS host chroot: zfsutils-linux, zfs-initramfs (cached)")
    with chroot_from(base) as tree:
        apt(tree, "update")
        apt(tree, "install", "-y", "zfsutils-linux", "zfs-initramfs", "debootstrap", "dpkg-dev")
        apt(tree, "clean")
        _pack(tree, out)
    return out


def _packages(tree: Path) -> dict[str, str]:
    """Every package dpkg knows in ``tree``: its status and version."""
    out = run(["chroot", str(tree), "dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev} ${Version}\n"],
              capture_output=True).stdout  # fmt: skip
    return {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in out.splitlines() if line}


def autopkgtest(deb: Path) -> None:
    """The package's autopkgtest (debian/tests: the unit tests against the installed package, a
    smoke test of the command) by autopkgtest itself, in a clean Debian 13 chroot (null runner)."""
    with chroot_from(base_tarball()) as tree:
        shutil.copy(deb, tree / "tmp" / deb.name)
        for rel in _sources():
            dest = tree / "tmp/src" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest)
        apt(tree, "update")
        apt(tree, "install", "-y", "autopkgtest")
        log("autopkgtest (null runner) in a clean chroot: debian/tests")
        got = subprocess.run(["chroot", str(tree), "autopkgtest", f"/tmp/{deb.name}", "/tmp/src/", "--", "null"],
                             capture_output=True, text=True,
                             env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"})  # fmt: skip
        DIST.mkdir(exist_ok=True)
        (DIST / "autopkgtest.log").write_text(got.stdout + got.stderr)
        summary = [line for line in got.stdout.splitlines() if re.match(r"^(unit|smoke)\s+(PASS|FAIL|SKIP)", line)]
        if got.returncode != 0 or len(summary) != 2:
            tail = "\n".join((got.stdout + got.stderr).splitlines()[-40:])
            raise SystemExit(f"deb: autopkgtest failed (dist/autopkgtest.log):\n{tail}")
        log("autopkgtest: " + "; ".join(" ".join(line.split()) for line in summary))


def piuparts(deb: Path) -> None:
    """piuparts on the .deb (install, remove, purge in a clean Debian 13 with main and contrib:
    nothing left behind, no error), run by piuparts in a chroot of its own, from the cached base."""
    base = base_tarball()
    with chroot_from(base) as tree:
        shutil.copy(deb, tree / "tmp" / deb.name)
        run(["gzip", "-1", "-c", str(base)], stdout=(tree / "tmp/base.tgz").open("wb"))
        apt(tree, "update")
        apt(tree, "install", "-y", "piuparts")
        log(f"piuparts {deb.name} (trixie, main and contrib)")
        argv = ["chroot", str(tree), "piuparts", "--basetgz", "/tmp/base.tgz", "-d", SUITE,
                "--mirror", f"{MIRROR} main contrib", "--no-upgrade-test", "--warn-on-others",
                "-l", "/tmp/piuparts.log", f"/tmp/{deb.name}"]  # fmt: skip
        got = subprocess.run(argv, capture_output=True, text=True,
                             env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"})  # fmt: skip
        DIST.mkdir(exist_ok=True)
        logged = tree / "tmp/piuparts.log"
        (DIST / "piuparts.log").write_text(logged.read_text() if logged.exists() else got.stdout + got.stderr)
        if got.returncode != 0:
            tail = "\n".join((got.stdout + got.stderr).splitlines()[-30:])
            raise SystemExit(f"deb: piuparts failed (dist/piuparts.log):\n{tail}")
        log("piuparts: PASS (install, remove, purge: nothing left behind)")


def install_route(deb: Path | None = None) -> None:
    """The README's install route on a host whose root is on ZFS changes none of its packages:
    make deb's step installs nothing there, the demo's and the tests' never zfs-fuse (it would
    remove zfsutils-linux and zfs-initramfs) nor anything that changes an installed package, and
    a plan that would remove one is refused in one line."""
    with chroot_from(zfs_host_tarball()) as tree:
        shutil.copy(REPO / "scripts/install-debian-deps.sh", tree / "tmp/install-debian-deps.sh")

        def deps(*args: str, extra: str = "") -> subprocess.CompletedProcess[str]:
            env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "APT_CLONE_DEPS_EXTRA": extra}
            return subprocess.run(["chroot", str(tree), "sh", "/tmp/install-debian-deps.sh", *args],
                                  capture_output=True, text=True, env=env)  # fmt: skip

        before = _packages(tree)
        assert all(before.get(p, "").startswith("ii ") for p in ("zfsutils-linux", "zfs-initramfs")), before
        got = deps("deb")
        assert got.returncode == 0 and _packages(tree) == before, (got.stderr, "make deb's step changed packages")
        refused = deps("deb", extra="zfs-fuse")
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 1 and len(lines) == 1, refused.stderr
        assert "would remove" in lines[0] and "zfsutils-linux" in lines[0] and "refused" in lines[0], lines
        assert _packages(tree) == before, "a refused plan changed packages"
        got = deps()
        assert got.returncode == 0, got.stderr[-2000:]
        assert "kernel OpenZFS is here" in got.stderr, got.stderr[-2000:]
        after = _packages(tree)
        changed = sorted(p for p, state in before.items() if after.get(p) != state)
        assert not changed, f"the demo's and the tests' step changed {changed}"
        assert "zfs-fuse" not in after, "zfs-fuse was installed beside kernel OpenZFS"
        added = sorted(set(after) - set(before))
        log(f"install route on a ZFS host chroot: make deb's step changed nothing; the demo's added {len(added)} "
            "packages and changed none (no zfs-fuse); a plan removing zfsutils-linux was refused")  # fmt: skip
        if deb is not None:  # and the package installs there, changing none of them either
            shutil.copy(deb, tree / "tmp" / deb.name)
            apt(tree, "install", "-y", "--no-remove", f"/tmp/{deb.name}")
            now = _packages(tree)
            changed = sorted(p for p, state in after.items() if now.get(p) != state)
            assert not changed and now.get("apt-clone-zfs", "").startswith("ii "), changed
            log(f"install route: apt install ./{deb.name} there changed no installed package")


def apt(tree: Path, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}
    return run(["chroot", str(tree), "apt-get", "-q", "-o", "Dpkg::Use-Pty=0", *args], env=env,
               stdout=subprocess.DEVNULL if "capture_output" not in kw else None, **kw)  # fmt: skip


def _pack(tree: Path, out: Path) -> None:
    part = out.with_name(out.name + ".part")
    run(["tar", "--numeric-owner", "--one-file-system", "-C", str(tree), "-cf", str(part), "."])
    part.rename(out)


@contextmanager
def chroot_from(tarball: Path) -> Iterator[Path]:
    """A fresh tree unpacked from ``tarball``, with /proc, /dev and resolv.conf; removed after."""
    tree = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="apt-clone-deb."))
    mounted: list[Path] = []
    try:
        run(["tar", "--numeric-owner", "-C", str(tree), "-xf", str(tarball)])
        tree.chmod(0o755)  # mkdtemp's 0700 would shut out every user but root (_apt, the builder)
        binds = (("proc", ["-t", "proc", "proc"]), ("dev", ["--bind", "/dev"]), ("dev/pts", ["--bind", "/dev/pts"]))
        for what, args in binds:
            run(["mount", *args, str(tree / what)])
            mounted.append(tree / what)
        shutil.copy("/etc/resolv.conf", tree / "etc/resolv.conf")
        policy = tree / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")  # no service starts in a chroot
        policy.chmod(0o755)
        yield tree
    finally:
        for m in reversed(mounted):
            subprocess.run(["umount", "-l", str(m)], check=False)
        if not any(os.path.ismount(m) for m in mounted):
            shutil.rmtree(tree, ignore_errors=True)


# --- build ------------------------------------------------------------------------------------
def _sources() -> list[str]:
    """The files of the source package: what git tracks, and new files not yet committed."""
    out = run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard"], capture_output=True).stdout
    return [p for p in out.splitlines() if (REPO / p).is_file() and not p.startswith("dist/")]


def build() -> Path:
    """Build source and binary packages and lint them; the .deb in dist/."""
    v = version()
    with chroot_from(build_tarball()) as tree:
        src = tree / "build" / f"apt-clone-zfs-{v}"
        for rel in _sources():
            dest = src / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest)
        run(["chown", "-R", f"{BUILDER_UID}:{BUILDER_UID}", str(tree / "build")])

        def as_builder(cwd: str, *argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(["chroot", f"--userspec={BUILDER_UID}:{BUILDER_UID}", str(tree), "env", "-i",
                                   "-C", cwd, "HOME=/build", "PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8", *argv],
                                  capture_output=True, text=True)  # fmt: skip

        log(f"dpkg-buildpackage of {v} in a clean {SUITE} chroot (the unit tests run in it)")
        built = as_builder(f"/build/apt-clone-zfs-{v}", "dpkg-buildpackage", "-us", "-uc")
        DIST.mkdir(exist_ok=True)
        (DIST / "build.log").write_text(built.stdout + built.stderr)
        if built.returncode != 0:
            tail = "\n".join((built.stdout + built.stderr).splitlines()[-30:])
            raise SystemExit(f"deb: dpkg-buildpackage failed (dist/build.log):\n{tail}")
        changes = tree / "build" / f"apt-clone-zfs_{v}_amd64.changes"
        if not changes.exists():
            (changes,) = (tree / "build").glob(f"apt-clone-zfs_{v}_*.changes")
        lint = [
            "lintian",
            "--pedantic",
            "--display-info",
            "--display-experimental",
            "--fail-on",
            "error,warning",
            changes.name,
        ]
        linted = as_builder("/build", *lint)
        (DIST / "lintian.txt").write_text(linted.stdout + linted.stderr)
        for old in DIST.glob("apt-clone-zfs_*"):
            old.unlink()
        for f in (tree / "build").glob(f"apt-clone-zfs_{v}*"):
            shutil.copy2(f, DIST / f.name)
    tags = [line for line in linted.stdout.splitlines() if re.match(r"[EW]: ", line)]
    if linted.returncode != 0 or tags:
        raise SystemExit("deb: lintian --pedantic found errors or warnings (dist/lintian.txt):\n" + "\n".join(tags))
    others = len([line for line in linted.stdout.splitlines() if re.match(r"[IPX]: ", line)])
    log(f"lintian --pedantic: no error, no warning ({others} info or pedantic notes in dist/lintian.txt)")
    deb = DIST / f"apt-clone-zfs_{v}_all.deb"
    log(f"built {deb.relative_to(REPO)}")
    return deb


def current_deb() -> Path:
    """The .deb of the current sources, built when missing or older than a source file. One
    builder at a time (make test's foreground and its VM lane may ask at once): a second caller
    waits on dist/.build.lock, then finds it current."""
    DIST.mkdir(exist_ok=True)
    with open(DIST / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        deb = DIST / f"apt-clone-zfs_{version()}_all.deb"
        if deb.exists():
            newest = max((REPO / p).stat().st_mtime for p in _sources())
            if newest <= deb.stat().st_mtime:
                return deb
        return build()


# --- check ------------------------------------------------------------------------------------
def _listing(tree: Path) -> set[str]:
    """Every path of the tree but the package manager's own records, caches and logs."""
    skip = ("proc", "dev", "tmp", "run", "var/lib/dpkg", "var/lib/apt", "var/cache", "var/log", "sys")
    found = set()
    for top, dirs, files in os.walk(tree):
        rel = os.path.relpath(top, tree)
        if rel != "." and rel.split(os.sep)[0] in ("proc", "dev", "tmp", "run", "sys"):
            dirs[:] = []
            continue
        if any(rel == s or rel.startswith(s + os.sep) for s in skip):
            dirs[:] = []
            continue
        for name in dirs + files:
            found.add("/" + os.path.normpath(os.path.join(rel, name)))
    return found


def security() -> None:
    """Each unit's exposure as ``systemd-analyze security`` rates it (the host's systemd)."""
    if shutil.which("systemd-analyze") is None:
        log("systemd-analyze security: no systemd-analyze here")
        return
    for unit in sorted((REPO / "systemd").glob("*.service")):
        got = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)], capture_output=True,
                             text=True)  # fmt: skip
        last = (got.stdout.strip().splitlines() or ["?"])[-1]
        log(f"systemd-analyze security: {last.replace('→ Overall exposure level for ', '')}")


def check(deb: Path) -> None:
    v = version()
    with chroot_from(base_tarball()) as tree:
        shutil.copy(deb, tree / "tmp" / deb.name)
        apt(tree, "update")
        log(f"apt-get install ./{deb.name} in a clean {SUITE} chroot (Depends from the archive)")
        apt(tree, "install", "-y", f"/tmp/{deb.name}")

        def inside(*argv: str) -> str:
            return run(["chroot", str(tree), *argv], capture_output=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                       "LC_ALL": "C.UTF-8"}).stdout  # fmt: skip

        got = inside("apt-clone", "--version").strip()
        assert got == f"apt-clone {v.split('-')[0]}", got
        assert "dist-upgrade" in inside("apt-clone", "--help")
        assert "dist-upgrade, upgrade, install, remove:" in inside("apt-clone", "--steps")
        files = set(inside("dpkg", "-L", "apt-clone-zfs").splitlines())
        missing = [f for f in INSTALLS if f not in files]
        assert not missing, f"dpkg -L apt-clone-zfs lacks {missing}"
        assert not [f for f in files if "sandbox" in f or "/tests/" in f], "the package ships the test sandbox"
        conffiles = inside("dpkg-query", "-W", "-f", "${Conffiles}", "apt-clone-zfs")
        assert all(c in conffiles for c in CONFFILES), conffiles
        assert not [e for e in ENABLED if not (tree / e.lstrip("/")).is_symlink()], "units not enabled"
        assert os.access(tree / "etc/grub.d/42_apt-clone", os.X_OK)
        script = "/usr/share/bash-completion/completions/apt-clone"
        complete = inside("bash", "-c", f"source {script}; complete -p apt-clone")
        assert "_apt_clone" in complete, complete
        apt(tree, "install", "-y", "man-db")
        page = inside("man", "-P", "cat", "apt-clone")
        assert "transactional apt operations" in page and "EXIT STATUS" in page, page[:500]
        assert "mode =" in inside("man", "-P", "cat", "5", "apt-clone.conf")
        log(f"installed: --version, --help, --steps, man, completion work; dpkg -L holds {len(INSTALLS)} files")
        apt(tree, "remove", "-y", "apt-clone-zfs")  # not purged: the hook's conffile stays
        ran = apt(tree, "install", "-y", "hello", capture_output=True)
        said = ran.stdout + ran.stderr
        assert "apt-clone" not in said and "not found" not in said, said[-2000:]
        apt(tree, "purge", "-y", "hello")
        log("removed, not purged: apt runs its hook's conffile and prints nothing of apt-clone's")
        state = tree / "var/lib/apt-clone"
        state.mkdir(mode=0o700, exist_ok=True)
        (state / "journal-x.json").write_text("{}")
        keep = tree / "var/lib/apt-clone-not-ours"
        keep.mkdir()
        before = _listing(tree)
        own_dirs = [f for f in files if ("apt_clone" in f or "apt-clone" in f) and (tree / f.lstrip("/")).is_dir()]
        apt(tree, "purge", "-y", "apt-clone-zfs")
        after = _listing(tree)

        # Ours: the package's files, what grew in its own directories (byte code), the units'
        # enable links and deb-systemd-helper's records of them (named for our units, and a
        # .wants directory that held only those), and its state.
        def ours(p: str) -> bool:
            named = "apt-clone" in os.path.basename(p) and p.startswith(("/etc/systemd/", "/var/lib/systemd/"))
            return p in files or named or any(p.startswith(d + "/") for d in [*own_dirs, "/var/lib/apt-clone"])

        removed = before - after
        wants = {p for p in removed if p.endswith(".wants") and all(ours(q) for q in before if q.startswith(p + "/"))}
        gone_wrong = sorted(p for p in removed if not ours(p) and p not in wants and p != "/var/lib/apt-clone")
        assert not gone_wrong, f"purge removed what is not apt-clone's: {gone_wrong[:10]}"
        assert not (tree / "etc/apt-clone").exists() and not state.exists(), "purge left apt-clone's config or state"
        assert not sorted(after - before), f"purge added {sorted(after - before)[:10]}"
        log("purged: apt-clone's files, config and state went, nothing else")


def main() -> int:
    if os.geteuid() != 0:
        print("deb: needs root (debootstrap, chroot)", file=sys.stderr)
        return 2
    what = sys.argv[1] if len(sys.argv) > 1 else "build"
    if what == "build":
        build()
    elif what == "build-if-older":
        current_deb()
    elif what == "check":
        deb = current_deb()  # built (and linted) unless the sources are older than dist/'s
        security()
        check(deb)
        autopkgtest(deb)
        piuparts(deb)
        install_route(deb)
    elif what == "autopkgtest":
        autopkgtest(current_deb())
    elif what == "piuparts":
        piuparts(current_deb())
    elif what == "install-route":
        install_route()
    elif what == "path":
        print(current_deb())
    else:
        print("usage: deb.py build|check|path", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
