"""``python -m tests.sandbox create|status|reboot|reset|destroy|suite|grub --dir DIR``."""

from __future__ import annotations

import argparse
import json
import sys

from apt_clone.errors import AptCloneError

from . import core, repo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sandbox", description=__doc__)
    parser.add_argument("command", choices=["create", "status", "reboot", "reset", "destroy", "suite", "grub"])
    parser.add_argument("--dir", required=True, help="sandbox directory")
    parser.add_argument("--suite", help="Debian suite to debootstrap (default: the host's)")
    parser.add_argument("--size", default=core.DEFAULT_SIZE, help="pool image size (default %(default)s)")
    parser.add_argument("--bpool", action="store_true", help="create: put /boot on a boot pool (bpool/BOOT/<name>)")
    parser.add_argument("--child", action="append", default=[], help="create: a child dataset of the root (e.g. var)")
    parser.add_argument("--enable", choices=repo.SUITES, help="suite: enable a repository suite in the current root")
    parser.add_argument("--disable", choices=repo.SUITES, help="suite: disable a repository suite in the current root")
    parser.add_argument("--inside", action="store_true", help="grub: GRUB's directory inside the checkpoints")
    parser.add_argument("--shared", action="store_true", help="grub: GRUB's directory shared again (the default)")
    args = parser.parse_args(argv)
    try:
        if args.command == "create":
            sb = core.create(
                args.dir,
                suite=args.suite,
                size=args.size,
                bpool=args.bpool,
                children=args.child,
                log=lambda m: print(m, file=sys.stderr),
            )
            print(sb.root)
        elif args.command == "status":
            print(json.dumps(core.status(args.dir), indent=2, sort_keys=True))
        elif args.command == "reboot":
            before, after = core.reboot(args.dir)
            print(f"reboot: {before or '(nothing)'} -> {after}")
        elif args.command == "reset":
            print(core.reset(args.dir).root)
        elif args.command == "destroy":
            stopped = core.destroy(args.dir)
            print("sandbox destroyed" + (" (zfs-fuse stopped)" if stopped else ""))
        elif args.command == "grub":
            print(core.grub_inside(args.dir, not args.shared))
        elif args.command == "suite":
            sb = core.sandbox_for(args.dir)
            if args.enable:
                print(repo.enable_suite(sb.root, args.enable))
            if args.disable:
                repo.disable_suite(sb.root, args.disable)
    except AptCloneError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
