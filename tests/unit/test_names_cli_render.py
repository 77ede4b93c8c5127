import pytest

from apt_clone import model
from apt_clone.cli.app import COMMAND_VALUE_OPTIONS, app, long_flags, translate_short_forms
from apt_clone.cli.render import label
from apt_clone.errors import UsageError
from apt_clone.names import (
    before_in_series,
    in_series,
    next_name,
    resolve_name,
    snapshot_tag,
    validate_name,
    validate_title,
)
from apt_clone.system import dataset_mounted_at, managed_system, mounts_under, parse_mountinfo


@pytest.mark.parametrize("bad", ["", "a/b", "a@b", "a%b", "a b", "a\tb", "naïve", "x" * 65, "-lead", ".."])
def test_bad_names_refused(bad):
    with pytest.raises(UsageError):
        validate_name(bad)


def test_names_addressing_outside_the_container_are_refused():
    assert resolve_name("rpool/ROOT/x", "rpool/ROOT") == "x"
    for bad in ("rpool/x", "rpool/ROOT/x/y", "other/ROOT/x", "rpool/ROOTx/y"):
        with pytest.raises(UsageError):
            resolve_name(bad, "rpool/ROOT")


@pytest.mark.parametrize("bad", ["", "   ", "a\nb", "a\tb", "a\x1bb", "x" * 201, "a\u2028b"])
def test_bad_titles_refused(bad):
    with pytest.raises(UsageError):
        validate_title(bad)


def test_titles_may_hold_quotes_dollars_unicode():
    assert validate_title('it\'s "$(rm -rf /)" `x`; ü') == 'it\'s "$(rm -rf /)" `x`; ü'


def test_next_name_continues_numbering():
    assert next_name("rootfs-nmu-000", {"rootfs-nmu-000"}) == "rootfs-nmu-001"
    assert next_name("rootfs-nmu-001", {"rootfs-nmu-000", "rootfs-nmu-001", "rootfs-nmu-007"}) == "rootfs-nmu-008"
    assert next_name("debian", {"debian"}) == "debian-nmu-001"
    assert snapshot_tag("rootfs-nmu-001") == "nmu-001" and snapshot_tag("debian-nmu-001") == "debian-nmu-001"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-l"], ["list"]),
        (["--root", "/x", "-y", "-a", "n"], ["--root", "/x", "-y", "activate", "n"]),
        (["--json", "-r", "n"], ["--json", "destroy", "n"]),
        (["--root=/x", "-l"], ["--root=/x", "list"]),
        (["install", "-a"], ["install", "-a"]),
        (["-s", "dist-upgrade"], ["-s", "dist-upgrade"]),
        # global options after the command go before it, as people type them
        (["install", "-y", "apache2"], ["-y", "install", "apache2"]),
        (["install", "apache2", "-y", "--json"], ["-y", "--json", "install", "apache2"]),
        (["-l", "--root", "/x", "-H"], ["--root", "/x", "list", "-H"]),
        (["-a", "n", "--root=/x", "-y"], ["--root=/x", "-y", "activate", "n"]),
        (["dist-upgrade", "-s", "-y"], ["-y", "dist-upgrade", "-s"]),  # -s: the command's own
        (["create", "--title", "-y"], ["create", "--title", "-y"]),  # the title's value stays
        (["list", "-s", "name", "-y"], ["-y", "list", "-s", "name"]),
        (["resume", "--pause-at", "apt"], ["resume", "--pause-at", "apt"]),
        (["install", "--pause-at", "apt", "pkg"], ["--pause-at", "apt", "install", "pkg"]),
        (["install", "--", "-y"], ["install", "--", "-y"]),
    ],
)
def test_short_forms(argv, expected):
    assert translate_short_forms(argv) == expected


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-y", "rollback", "n"], ["--yes", "rollback", "n"]),
        (["--root", "-y", "-s", "-y", "install", "-y"], ["--root", "-y", "--in-clone", "--yes", "install", "-y"]),
        (["--json", "-y", "list", "-s", "name"], ["--json", "--yes", "list", "-s", "name"]),  # list's own -s
        (["--root=/x", "--yes", "-y"], ["--root=/x", "--yes", "--yes"]),
    ],
)
def test_global_short_flags_reach_click_in_their_long_forms(argv, expected):
    assert long_flags(argv) == expected


def test_a_global_short_flag_loads_no_did_you_mean(tmp_path):
    """click tries ``-y`` as a long option first and builds a "did you mean" from difflib when
    it is none: a command line that names its global flags by their short forms loads none."""
    import subprocess
    import sys

    code = (
        "import sys; from apt_clone.cli.app import main; "
        f"main(['--root', {str(tmp_path / 'none')!r}, '-y', 'rollback', 'n']); "
        "print('difflib' in sys.modules)"
    )
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert got.stdout.strip().splitlines()[-1] == "False", got.stdout + got.stderr
    # parsed: the command ran and said why it stops (no such root; unprivileged, root is needed)
    assert got.stderr.startswith("apt-clone: ") and "option" not in got.stderr, got.stderr


def test_each_command_s_own_value_options_are_known():
    """The words after a command's own value options are never taken for global options."""
    import click
    import typer

    group = typer.main.get_command(app)
    assert isinstance(group, click.Group)
    found = {}
    for name, command in group.commands.items():
        opts = {o for p in command.params if isinstance(p, click.Option) and not p.is_flag for o in p.opts}
        if opts:
            found[name] = frozenset(opts)
    assert found == COMMAND_VALUE_OPTIONS


MOUNTINFO = """\
22 1 0:21 / / rw - zfs rpool/ROOT/debian rw,xattr
43 27 0:40 / /var/tmp/sb\\040x/root rw,relatime - fuse.zfs acsb/ROOT/rootfs-nmu-000 rw,user_id=0
44 43 0:5 / /var/tmp/sb\\040x/root/proc rw - proc proc rw
45 27 0:41 / /srv rw - ext4 /dev/vda1 rw
"""


def test_mountinfo_finds_dataset_and_unescapes():
    mounts = parse_mountinfo(MOUNTINFO)
    assert dataset_mounted_at("/", mounts) == "rpool/ROOT/debian"
    assert mounts[1].mountpoint == "/var/tmp/sb x/root"
    assert [m.mountpoint for m in mounts_under("/var/tmp/sb x/root", mounts)][0] == "/var/tmp/sb x/root/proc"
    system = managed_system("/", mounts)
    assert system.container == "rpool/ROOT" and system.pool == "rpool" and system.current_name == "debian"


def test_non_zfs_root_is_refused(tmp_path):
    mounts = parse_mountinfo(MOUNTINFO)
    with pytest.raises(UsageError, match="not the mount point of a ZFS dataset"):
        managed_system(str(tmp_path), mounts)


def _cp(**kw):
    base = dict(
        name="rootfs-nmu-001",
        dataset="p/ROOT/rootfs-nmu-001",
        title="Upgrade Checkpoint",
        kind="upgrade",
        created="2008-01-17T04:09:32Z",
        command=None,
        summary=None,
        origin=None,
        used=0,
        referenced=0,
        createtxg=1,
        active=False,
        current=False,
        mounted=False,
    )
    base.update(kw)
    return model.Checkpoint(**base)


def test_label_as_in_the_seed():
    assert label(_cp(kind="initial", title="Debian GNU/Linux 12")) == "Debian GNU/Linux 12 [initial]"
    text = label(_cp())
    assert text.startswith("Upgrade Checkpoint [nmu-001 : ") and text.endswith(" 2008]")


def test_the_series_a_new_name_continues():
    assert in_series("rootfs-nmu-000", "rootfs-nmu-041") and not in_series("rootfs-nmu-000", "mine")
    assert in_series("debian", "debian-nmu-007") and not in_series("debian", "rootfs-nmu-007")
    assert before_in_series("rootfs-nmu-010") == "rootfs-nmu-009"
    assert before_in_series("rootfs-nmu-000") is None and before_in_series("mine") is None
    # the container's newest is where the numbering goes on, without every name
    assert next_name("rootfs-nmu-000", {"rootfs-nmu-000", "rootfs-nmu-041"}) == "rootfs-nmu-042"
