"""apt's version-3 hook protocol, parsed from input recorded from apt 3.0 on Debian 13."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from apt_clone.apt.hook import title_of
from apt_clone.apt.protocol import HookChange, HookInput, ProtocolError, parse, summary
from apt_clone.paths import in_chroot

DATA = Path(__file__).parent / "data"


def _recorded(name: str) -> str:
    return (DATA / f"pre-install-v3-{name}.txt").read_text()


def test_an_install_and_the_command_that_started_apt():
    got = parse(_recorded("install"))
    assert got.changes == [HookChange("hello", "amd64", None, "2.10-5", "install")]  # its CONFIGURE line folded
    assert got.command == "apt-get install -y -q hello"
    assert got.other_root is None and got.config["APT::Architecture"] == "amd64"
    assert title_of([got.command], summary(got.changes)) == "apt-get install -y -q hello: 1 installed"


def test_a_removal_and_a_reinstall():
    got = parse(_recorded("remove"))
    assert got.changes == [HookChange("hello", "amd64", "2.10-5", None, "remove")]
    assert summary(got.changes) == "1 removed"
    again = parse(_recorded("reinstall"))
    assert again.changes == [HookChange("hello", "amd64", "2.10-5", "2.10-5", "reinstall")]
    assert again.command == "apt-get install --reinstall -y -q hello"
    assert parse("VERSION 3\nquiet=1\n\n").changes == []


def test_upgrades_downgrades_reinstalls_and_another_root():
    text = "\n".join(["VERSION 3", "RootDir=/srv/image/", "CommandLine::AsString=unattended-upgrade", "",
                      "libc6 2.41-11 amd64 same < 2.41-12 amd64 same /var/cache/apt/archives/libc6.deb",
                      "libc6 2.41-11 amd64 same < 2.41-12 amd64 same **CONFIGURE**",
                      "tzdata 2025b-4 all foreign > 2025a-1 all foreign /x/tzdata.deb",
                      "bash 5.2.37-2 amd64 foreign = 5.2.37-2 amd64 foreign /x/bash.deb", ""])  # fmt: skip
    got = parse(text)
    assert [c.action for c in got.changes] == ["upgrade", "downgrade", "reinstall"]
    assert got.other_root == "/srv/image/" and got.command == "unattended-upgrade"
    assert summary(got.changes) == "1 upgraded, 1 downgraded, 1 reinstalled"


def test_what_is_not_the_protocol_is_refused():
    with pytest.raises(ProtocolError, match="version 3"):
        parse("/var/cache/apt/archives/hello_2.10-5_amd64.deb\n")  # version 1: file names only
    with pytest.raises(ProtocolError, match="unexpected hook line"):
        parse("VERSION 3\n\nhello - - none <\n")


def test_a_long_title_is_cut_and_a_chroot_is_seen(tmp_path):
    got = parse("VERSION 3\nCommandLine::AsString=" + "apt%20install%20" + "%20".join(["pkg"] * 200) + "\n\n")
    assert len(t := title_of([got.command], summary(got.changes))) == 200 and t.endswith("…")
    try:
        init = os.stat("/proc/1/root/")
        expected = (init.st_dev, init.st_ino) != (os.stat("/").st_dev, os.stat("/").st_ino)
    except OSError:  # init's root cannot be looked at (a container): unknown counts as a chroot
        expected = True
    assert in_chroot() is expected
    assert in_chroot(str(tmp_path)) is True  # another directory for init's root: a chroot
    assert in_chroot(str(tmp_path / "missing")) is True


@pytest.mark.parametrize("root", ["/", "//", "/.", "///./"])
def test_every_spelling_of_this_root_is_this_root(root):
    text = "\n".join(
        [
            "VERSION 3",
            f"RootDir={root}",
            "Dir=/",
            "",
            "bash 5.2.37-2 amd64 foreign = 5.2.37-2 amd64 foreign /x/bash.deb",
            "",
        ]
    )
    assert parse(text).other_root is None


@pytest.mark.parametrize(
    "raw",
    [
        "apt-get -o Dpkg::Options::%3d--force-confold install nginx",
        "apt install caf%C3%A9 %zz %4 50%",
        "apt install %FF%FE broken-utf8",
        "apt install déjà-vu%20",
        "apt %25 %2525",
    ],
)
def test_a_quoted_command_reads_as_urllib_would_read_it(raw):
    """apt %-quotes its configuration's values (``=`` in an ``-o`` option, say)."""
    import urllib.parse

    assert HookInput(config={"CommandLine::AsString": raw}).command == urllib.parse.unquote(raw)


def test_reading_a_quoted_command_loads_no_url_parser():
    """The hook's start-up: urllib.parse would add 3 ms to every hooked run given options."""
    import subprocess
    import sys

    body = (
        "import sys; from apt_clone.apt.protocol import HookInput\n"
        "assert HookInput(config={'CommandLine::AsString': 'apt-get -o A%3db install x'}).command == "
        "'apt-get -o A=b install x'\n"
        "assert 'urllib.parse' not in sys.modules, 'urllib.parse loaded'\n"
    )
    import apt_clone

    # No site (the venv's start-up loads urllib): the package's parent directory given instead,
    # the source tree's or the installed package's (autopkgtest).
    where = os.path.dirname(os.path.dirname(os.path.abspath(apt_clone.__file__)))
    subprocess.run([sys.executable, "-S", "-c", body], check=True, env={**os.environ, "PYTHONPATH": where})
