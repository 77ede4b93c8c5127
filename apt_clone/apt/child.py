"""The python-apt side, run as a child process (python-apt's configuration is process-wide).

``python -m apt_clone.apt.child plan --root R --op OP [PKG...]`` prints a JSON plan;
``python -m apt_clone.apt.child scan DEB...`` prints which .debs ask for a reboot;
``python -m apt_clone.apt.child session --root R --op OP [PKG...]`` prints the plan on one line,
then waits for one line on its input: ``fetch`` downloads the plan's archives with the cache it
planned with (progress on standard error) and prints, on one line, which of them ask for a
reboot; anything else, or the end of its input, ends it. One python-apt process for the plan,
the download and the scan, which waits while apt-clone asks its question and checks the space.
Only Debian's python3-apt is imported here, never in the apt-clone process itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, cast

REBOOT_MARKERS = (b"/run/reboot-required", b"/var/run/reboot-required")


def _enter(root: str) -> None:
    """Plan from inside an offline root: chroot into it (this child only), so that its apt
    configuration, its dpkg status and its ``file:`` sources (a local repository of the image,
    whose indexes apt reads in place) are read as its own apt would read them. What the planning
    imports is imported before: the root need not have python."""
    _load()
    os.chroot(root)
    os.chdir("/")


def _load() -> None:
    """python-apt, all that planning, a download and a scan use."""
    import apt.cache  # noqa: F401
    import apt.package  # noqa: F401
    import apt.progress.base  # noqa: F401
    import apt.progress.text  # noqa: F401  # a session's download
    import apt_inst  # noqa: F401  # a session's scan
    import apt_pkg  # noqa: F401


def plan(root: str, op: str, packages: list[str]) -> dict[str, Any]:
    return _plan(root, op, packages)[0]


def _plan(root: str, op: str, packages: list[str]) -> tuple[dict[str, Any], Any]:
    """The plan, and the cache it was made with (marked as planned)."""
    import apt  # python3-apt

    if os.path.realpath(root) != "/":
        _enter(root)
    cache = apt.Cache()
    return _marked(cache, op, packages), cache


def _marked(cache: Any, op: str, packages: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"changes": [], "download": 0, "space": 0, "error": None, "journal_dirty": False}
    if cache.dpkg_journal_dirty:
        out["journal_dirty"] = True
        return out
    try:
        with cache.actiongroup():
            if op == "dist-upgrade":
                cache.upgrade(dist_upgrade=True)
            elif op == "upgrade":
                cache.upgrade(dist_upgrade=False)
            elif op in ("install", "remove"):
                for name in packages:
                    if name not in cache:
                        out["error"] = f"unknown package '{name}': no such package in the configured sources"
                        out["error_kind"] = "usage"
                        return out
                    pkg = cache[name]
                    if op == "install":
                        if pkg.candidate is None:
                            out["error"] = f"package '{name}' has no installation candidate"
                            out["error_kind"] = "usage"
                            return out
                        pkg.mark_install()
                        if not (pkg.marked_install or pkg.marked_upgrade or pkg.is_installed):
                            out["error"] = f"cannot install '{name}': its dependencies cannot be satisfied"
                            return out
                    else:
                        if not pkg.is_installed:
                            out["error"] = f"package '{name}' is not installed"
                            out["error_kind"] = "usage"
                            return out
                        pkg.mark_delete()
            else:
                out["error"] = f"unknown operation {op}"
                return out
    except SystemError as exc:
        out["error"] = f"the resolver cannot satisfy the request: {str(exc).strip().removeprefix('E:')}"
        return out
    if cache.broken_count:
        broken = [p.name for p in cache if p.is_inst_broken or p.is_now_broken][:5]
        out["error"] = f"broken dependencies ({', '.join(broken) or cache.broken_count})"
        return out
    for pkg in sorted(cache.get_changes(), key=lambda p: p.name):
        if pkg.marked_delete:
            action = "remove"
        elif pkg.marked_install:
            action = "install"
        elif pkg.marked_upgrade:
            action = "upgrade"
        elif pkg.marked_downgrade:
            action = "downgrade"
        else:
            action = "reinstall"
        cand = None if action == "remove" else pkg.candidate
        out["changes"].append(
            {
                "name": pkg.name,
                "action": action,
                "old": pkg.installed.version if pkg.installed else None,
                "new": cand.version if cand else None,
                "uri": cand.uri if cand else None,
                "arch": cand.architecture if cand else None,
            }
        )
    out["download"] = int(cache.required_download)
    out["space"] = int(cache.required_space)
    return out


def fetch(cache: Any) -> dict[str, Any]:
    """Download what ``cache`` has marked, as ``apt-get --download-only`` would (its progress on
    standard error), then :func:`scan` the archives: ``{"error": ..., "reboot": [...]}``."""
    # python3-apt
    import apt.progress.text
    import apt_pkg

    progress = apt.progress.text.AcquireProgress(outfile=cast(Any, sys.stderr))  # the stubs want a TextIOBase
    fetcher = apt_pkg.Acquire(progress)
    try:
        cache.fetch_archives(fetcher=fetcher)
    except Exception as exc:  # FetchFailedException, LockFailedException, UntrustedException: as data
        return {"error": str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, "reboot": []}
    return {"error": None, **scan([item.destfile for item in fetcher.items])}


def session(root: str) -> int:
    """``session``: python-apt loaded at once, while the parent gets ready; then, for a request
    line (``{"op": ..., "packages": [...]}``; none: nothing to do), the root entered (the parent
    holds its lock by then: whatever recovery it ran is done) and the plan on one line; then,
    asked ``fetch``, the download and the scan."""
    try:
        _load()
    except Exception:  # noqa: BLE001, S110 - the plan below meets it again and reports it
        pass
    line = sys.stdin.readline()
    if not line.strip():
        return 0
    try:
        request = json.loads(line)
        planned, cache = _plan(root, str(request["op"]), [str(p) for p in request["packages"]])
    except Exception as exc:  # reported as data, as plan's
        planned, cache = {"error": f"python-apt: {exc}".splitlines()[0]}, None
    print(json.dumps(planned), flush=True)
    if cache is None or planned.get("error") or sys.stdin.readline().strip() != "fetch":
        return 0
    try:
        result = fetch(cache)
    except Exception as exc:  # noqa: BLE001 - reported as data: the parent words it
        result = {"error": f"python-apt: {exc}".splitlines()[0], "reboot": []}
    print(json.dumps(result), flush=True)
    return 0


def scan(debs: list[str]) -> dict[str, Any]:
    """Which .debs' maintainer scripts ask for a reboot through /run/reboot-required."""
    import apt_inst  # python3-apt

    asking = []
    for path in debs:
        try:
            control = apt_inst.DebFile(path).control
        except (SystemError, OSError):
            continue
        for script in ("postinst", "preinst"):
            try:
                data = control.extractdata(script)
            except LookupError:
                continue
            if any(marker in data for marker in REBOOT_MARKERS):
                asking.append(path)
                break
    return {"reboot": asking}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="apt_clone.apt.child")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("plan")
    p.add_argument("--root", required=True)
    p.add_argument("--op", required=True)
    p.add_argument("packages", nargs="*")
    s = sub.add_parser("scan")
    s.add_argument("debs", nargs="*")
    w = sub.add_parser("session")
    w.add_argument("--root", required=True)
    args = parser.parse_args(argv)
    if args.cmd == "session":
        return session(args.root)
    try:
        result = plan(args.root, args.op, args.packages) if args.cmd == "plan" else scan(args.debs)
    except Exception as exc:  # reported as data: the parent turns it into one line
        result = {"error": f"python-apt: {exc}".splitlines()[0]}
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # its answer is written: python-apt's cache is not torn down (tens of ms)
