#!/bin/sh
# make ansible-setup: ansible-core (pinned, from PyPI) in its own venv, and ansible-test's sanity
# environments primed, so that the collection's tests run with no network.
#
# ansible-test makes each sanity environment with a get-pip script it downloads from a host of
# its own (ci-files.testing.ansible.com), which is not reachable here; pip's own wheel from PyPI
# does the same job (get-pip is pip installing itself): the script put in its cache runs it.
# Everything lives under $CACHE (HOME for ansible-test), never in root's home.
set -eu
PY=${PY:-/usr/bin/python3}
VENV=${ANSIBLE_VENV:-.venv-ansible}
CACHE=${APT_CLONE_ANSIBLE_CACHE:-/var/cache/apt-clone-ansible}
REQUIREMENTS=ansible/tests/requirements.txt
stamp=$VENV/.installed

if [ ! -f "$stamp" ] || [ "$REQUIREMENTS" -nt "$stamp" ]; then
    test -x "$VENV/bin/python" || "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored: it is neither" >&2 || true
    "$VENV/bin/python" -m pip install -q -r "$REQUIREMENTS" 2>&1 | grep -v "is ignored: it is neither" >&2 || true
    "$VENV/bin/ansible-playbook" --version >/dev/null
    touch "$stamp"
fi
venv=$(realpath "$VENV")
version=$("$venv/bin/ansible-test" --version)
primed=$CACHE/primed
[ -f "$primed" ] && [ "$(cat "$primed")" = "$version" ] && exit 0

pip_version=$("$VENV/bin/python" -c 'from ansible_test._internal.python_requirements import get_venv_packages
from ansible_test._internal.host_configs import NativePythonConfig
print(get_venv_packages(NativePythonConfig(version="3.11"))["pip"])')
cache=$CACHE/home/.ansible/test/cache
mkdir -p "$cache"
"$VENV/bin/python" -m pip download -q --no-deps -d "$cache" "pip==$pip_version" 2>&1 | grep -v "is ignored: it is neither" >&2 || true
test -f "$cache/pip-$pip_version-py3-none-any.whl"
script=$cache/get_pip_$(echo "$pip_version" | tr . _).py
cat > "$script" <<PY
"""get-pip for ansible-test: pip $pip_version installs itself (and what it is asked to) from its wheel."""
import os
import runpy
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "pip-$pip_version-py3-none-any.whl"))
sys.argv = ["pip", "install"] + [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
PY
# ansible-test wants the collection in ansible_collections/NAMESPACE/NAME, under git.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tree=$work/ansible_collections/aptclone/zfs
mkdir -p "$tree"
cp -r ansible/. "$tree"
git init -q "$tree"
git -C "$tree" add -A
(cd "$tree" && HOME=$CACHE/home "$venv/bin/ansible-test" sanity --prime-venvs --python 3.11 --color no) >/dev/null
echo "$version" > "$primed"
