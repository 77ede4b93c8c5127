"""Helpers shared by the integration tests."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

SANDBOX_DIR = os.environ.get("APT_CLONE_TEST_SANDBOX", "/var/tmp/apt-clone-test-sandbox")

_MAINS = {"apt_clone": "apt_clone.entry", "tests.sandbox": "tests.sandbox.__main__"}
_PRELOAD = {"apt_clone": ("apt_clone.cli.app",)}
FORK = os.environ.get("APT_CLONE_TEST_FORK") == "1"
"""Run the command lines in a forked child of the test process instead of a new interpreter.

The child runs the same ``main`` as ``python -m`` does, in its own process (own pid, fds, signals,
exit status); only the interpreter start and the imports are saved. Under software emulation (the
VM lane) those cost seconds per command; on real hardware, tests exec a fresh interpreter."""


def _preload_pyzfs() -> None:
    """Where libzfs_core can work, import it once here: every forked command that changes ZFS
    would import it again (about a second under emulation), like the rest of the interpreter start."""
    if os.path.exists("/dev/zfs") and "libzfs_core" not in sys.modules:
        try:
            importlib.import_module("libzfs_core")
        except ImportError:
            pass


def run_module(
    module: str, argv: list[str], input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m MODULE ARGV...`` with its output captured: exec'd, or forked when FORK is set."""
    full_env = {**os.environ, **(env or {})}
    if not FORK:
        return subprocess.run(
            [sys.executable, "-m", module, *argv],
            capture_output=True,
            text=True,
            check=False,
            input=input,
            env=full_env,
        )
    main = importlib.import_module(_MAINS[module]).main
    for name in _PRELOAD.get(module, ()):
        importlib.import_module(name)  # what the child would import anyway (entry -> the CLI)
    _preload_pyzfs()
    with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
        fin.write((input or "").encode())
        fin.flush()
        fin.seek(0)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                for fd, f in ((0, fin), (1, fout), (2, ferr)):
                    os.dup2(f.fileno(), fd)
                sys.stdin = open(0, closefd=False)  # noqa: SIM115
                sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
                sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
                signal.signal(signal.SIGINT, signal.default_int_handler)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.environ.clear()
                os.environ.update(full_env)
                sys.argv = [module, *argv]
                code = main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        fout.seek(0)
        ferr.seek(0)
        out = fout.read().decode(errors="replace")
        err = ferr.read().decode(errors="replace")
    return subprocess.CompletedProcess([module, *argv], os.waitstatus_to_exitcode(status), out, err)


@dataclass(frozen=True)
class SandboxInfo:
    directory: str
    root: str
    pool: str
    container: str

    @property
    def first(self) -> str:
        return f"{self.container}/rootfs-nmu-000"

    def ds(self, name: str) -> str:
        return f"{self.container}/{name}"


def sandbox_cli(*args: str, directory: str = SANDBOX_DIR) -> subprocess.CompletedProcess[str]:
    return run_module("tests.sandbox", [*args, "--dir", directory])


def config_env(directory: Path, text: str) -> dict[str, str]:
    """The environment that makes apt-clone read ``text`` as its configuration file."""
    path = directory / "apt-clone.conf"
    path.write_text(text)
    path.chmod(0o644)
    return {"APT_CLONE_CONFIG": str(path)}


def apt_clone(
    sb: SandboxInfo, *args: str, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real command line against the sandbox root."""
    return run_module("apt_clone", ["--root", sb.root, *args], input=input, env=env)


def zfs_state(sb: SandboxInfo) -> list[str]:
    """``zfs list -t all`` of the pool: names, origins and our properties, straight from zfs."""
    ours = ("title", "kind", "created", "command", "summary", "checkpoint-of")
    props = ",".join(["name", "origin", "mountpoint", "canmount", *(f"org.aptclone:{p}" for p in ours)])
    out = subprocess.run(
        ["zfs", "list", "-H", "-t", "all", "-r", "-o", props, sb.pool], capture_output=True, text=True, check=True
    )
    return out.stdout.splitlines()


def zfs_names(sb: SandboxInfo) -> list[str]:
    return [line.split("\t")[0] for line in zfs_state(sb)]


def zfs_get(name: str, prop: str) -> str:
    """One property's exact value (``-p``: zfs-fuse prints a guid as ``10.2E`` without it)."""
    out = subprocess.run(["zfs", "get", "-Hp", "-o", "value", prop, name], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def bootfs(sb: SandboxInfo) -> str:
    out = subprocess.run(["zpool", "list", "-H", "-o", "bootfs", sb.pool], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def reboot(sb: SandboxInfo) -> None:
    result = sandbox_cli("reboot")
    assert result.returncode == 0, result.stderr


def enable_suite(sb: SandboxInfo, suite: str) -> None:
    result = sandbox_cli("suite", "--enable", suite, directory=sb.directory)
    assert result.returncode == 0, result.stderr


def installed_version(root: str, package: str) -> str | None:
    out = subprocess.run(
        ["chroot", root, "dpkg-query", "-W", "-f", "${Status} ${Version}", package], capture_output=True, text=True
    )
    if out.returncode != 0 or "ok installed" not in out.stdout:
        return None
    return out.stdout.split()[-1]


def dpkg_status_bytes(root: str) -> bytes:
    with open(os.path.join(root, "var/lib/dpkg/status"), "rb") as f:
        return f.read()


SLOW_READY, SLOW_GO = "/dev/ac-slow.ready", "/dev/ac-slow.go"


class SlowPostinst:
    """ac-slow's postinst announces itself on a FIFO in /dev and then waits: a known point in apt."""

    def __enter__(self) -> SlowPostinst:
        for path in (SLOW_READY, SLOW_GO):
            if os.path.exists(path):
                os.unlink(path)
            os.mkfifo(path)
        return self

    def wait_until_running(self, proc: subprocess.Popen[str], timeout: float = 180) -> None:
        """Block (bounded) until the postinst has written to the ready FIFO: an event, not a sleep."""
        import select

        fd = os.open(SLOW_READY, os.O_RDONLY | os.O_NONBLOCK)
        try:
            while True:
                readable, _, _ = select.select([fd], [], [], timeout)
                assert readable, "the postinst never started"
                if os.read(fd, 100):
                    return
                assert proc.poll() is None, proc.communicate()
        finally:
            os.close(fd)

    def __exit__(self, *exc: object) -> None:
        for path in (SLOW_READY, SLOW_GO):
            if os.path.exists(path):
                os.unlink(path)


def apt_clone_popen(sb: SandboxInfo, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "apt_clone", "--root", sb.root, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def leftovers(sb: SandboxInfo) -> list[str]:
    """What no consistent state may hold: mounts in /run/apt-clone or chroot mounts in the root,
    step snapshots, changed mountpoints, policy-rc.d or moved-aside files."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            if mp.startswith("/run/apt-clone/") or mp in {
                f"{sb.root}/{d}" for d in ("proc", "sys", "dev", "dev/pts", "run")
            }:
                found.append(f"mount {mp}")
    out = subprocess.run(
        ["zfs", "list", "-H", "-t", "all", "-r", "-o", "name,org.aptclone:saved-mountpoint", sb.pool],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        name, saved = line.split("\t")
        if "@acstep-" in name:
            found.append(f"step snapshot {name}")
        if saved != "-":
            found.append(f"saved mountpoint on {name}")
    for rel in ("usr/sbin/policy-rc.d", "etc/resolv.conf.apt-clone-saved", "etc/resolv.conf.apt-clone-absent"):
        if os.path.lexists(os.path.join(sb.root, rel)):
            found.append(f"file {rel}")
    return found


def mount_esp(sb: SandboxInfo, tmp_path: Path, *, fresh: bool = True) -> str:
    """A filesystem GRUB writes at the root's /boot/efi, as an ESP is (ext2 here; FAT in the VM
    lane), from ``tmp_path/esp.img`` (``fresh``: a new one): its path. The caller unmounts it."""
    esp = os.path.join(sb.root, "boot/efi")
    image = tmp_path / "esp.img"
    if fresh:
        subprocess.run(["truncate", "-s", "16M", str(image)], check=True)
        subprocess.run(["mkfs.ext2", "-q", "-F", str(image)], check=True)
    os.makedirs(esp, exist_ok=True)
    subprocess.run(["mount", "-o", "loop", str(image), esp], check=True)
    return esp
