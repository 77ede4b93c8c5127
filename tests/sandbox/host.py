"""Run a command in the sandbox root as on a host booted from it: apt, dpkg and the installed
apt-clone see the sandbox root as ``/`` and their own process tree, not a chroot.

``python -m tests.sandbox.host ROOT -- ARGV...`` (as root) starts ``unshare --pid --fork
--mount`` with a fresh /proc of the new PID namespace at ROOT/proc; inside, this module (as PID 1
of that namespace) binds /dev, a /run of its own, zfs-fuse's socket and CLI (over the root's
OpenZFS zfs and zpool, which need a kernel module this machine lacks) and apt-clone's run and
state directories of the outer system, then chroots into ROOT and runs ARGV. Init's root is then
the sandbox root, so the hook's chroot test (``/proc/1/root``) sees the host it would see on a
booted machine; a further ``chroot`` inside is a chroot to it.
"""

from __future__ import annotations

import os
import subprocess
import sys

from apt_clone.paths import run_dir, state_dir

ZFS_SOCKET_DIR = "/var/run/zfs"
HOST_TOOLS = ("/usr/sbin/zfs", "/usr/sbin/zpool")
ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LC_ALL": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
    "HOME": "/root",
}


def argv_for(root: str, argv: list[str]) -> list[str]:
    """The command line that runs ``argv`` in ``root`` as on a host booted from it."""
    return [
        "unshare", "--pid", "--fork", "--mount", "--propagation", "private",
        f"--mount-proc={os.path.join(root, 'proc')}",
        sys.executable, "-m", "tests.sandbox.host", root, "--", *argv,
    ]  # fmt: skip


def run(
    root: str, argv: list[str], *, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv_for(root, argv),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "APT_CLONE_HOST_ENV": " ".join(f"{k}={v}" for k, v in (env or {}).items())},
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def _bind(source: str, target: str) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    _mount("--bind", source, target)


def _inside(root: str, argv: list[str]) -> int:
    """PID 1 of the new namespaces: set the host up, chroot, run ``argv``, reap, exit with its status."""
    _mount("--rbind", "/dev", os.path.join(root, "dev"))
    _mount("-t", "tmpfs", "-o", "mode=755,nosuid,nodev", "tmpfs", os.path.join(root, "run"))
    _bind(os.path.realpath(ZFS_SOCKET_DIR), os.path.join(root, "run/zfs"))
    for tool in HOST_TOOLS:
        _bind(tool, os.path.join(root, tool.lstrip("/")))
    for outer, inner in ((run_dir(), "run/apt-clone"), (state_dir(), "var/lib/apt-clone")):
        os.makedirs(outer, mode=0o700, exist_ok=True)
        _bind(outer, os.path.join(root, inner))
    os.chroot(root)
    os.chdir("/")
    env = dict(ENV)
    for item in os.environ.get("APT_CLONE_HOST_ENV", "").split():
        key, _, value = item.partition("=")
        env[key] = value
    child = subprocess.Popen(argv, env=env)
    status = child.wait()
    try:
        while True:  # orphans of the command are ours to reap
            os.wait()
    except ChildProcessError:
        pass
    return status


def main() -> int:
    args = sys.argv[1:]
    if len(args) < 3 or args[1] != "--":
        print("usage: python -m tests.sandbox.host ROOT -- ARGV...", file=sys.stderr)
        return 2
    return _inside(args[0], args[2:])


if __name__ == "__main__":
    sys.exit(main())
