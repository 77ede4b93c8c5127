"""A fleet host's stand-in for its reboot into a trial (``apt_clone_reboot_command``).

The sandbox boots what is next (``tests.sandbox reboot``), then its apt-clone-trial.service runs:
``apt-clone trial-commit`` judges the trial with the host's health checks (no unit failed: a
systemctl that lists none). A bad trial reboots into the default, as the real one does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True, help="the sandbox directory")
    parser.add_argument("--apt-clone", required=True, help="the apt-clone program")
    args = parser.parse_args()
    sandbox = [sys.executable, "-m", "tests.sandbox"]
    subprocess.run([*sandbox, "reboot", "--dir", args.dir], check=True)
    root = os.path.join(args.dir, "root")
    with tempfile.TemporaryDirectory() as fake:
        systemctl = os.path.join(fake, "systemctl")
        with open(systemctl, "w", encoding="utf-8") as f:
            f.write("#!/bin/sh\nexit 0\n")  # list-units --state=failed: none
        os.chmod(systemctl, 0o755)
        env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
        judged = subprocess.run([args.apt_clone, "--root", root, "-y", "trial-commit"], env=env, text=True)
    if judged.returncode != 0:
        return judged.returncode
    listing = subprocess.run(
        [args.apt_clone, "--root", root, "--json", "-l"], capture_output=True, text=True, check=True
    ).stdout
    if any(c["current"] and c["bad"] for c in json.loads(listing)):
        subprocess.run([*sandbox, "reboot", "--dir", args.dir], check=True)  # the real one reboots by itself
    return 0


if __name__ == "__main__":
    sys.exit(main())
