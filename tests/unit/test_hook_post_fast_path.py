"""The APT hook's post (apt/hook-post, sh): dpkg did what was planned, so only the end is noted
and no Python starts; anything else goes to ``apt-clone hook-post``. Run here against a
dpkg-query that answers from a table; tests/package runs it with apt and dpkg for real."""

import os
import subprocess
from pathlib import Path

import pytest

from apt_clone.apt import hook, protocol

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "apt" / "hook-post"
DATA = Path(__file__).parent / "data"


def _changes(name: str) -> list[protocol.HookChange]:
    text = (DATA / name).read_text()
    return protocol.parse(text).changes


def test_the_expectation_names_the_packages_and_what_dpkg_query_shows_of_those_installed():
    assert hook.expectation(_changes("pre-install-v3-install.txt")) == "hello\ninstalled hello amd64 2.10-5\n"
    assert hook.expectation(_changes("pre-install-v3-remove.txt")) == "hello\n"
    changes = [
        protocol.HookChange("zz", "all", "1", "2", "upgrade"),
        protocol.HookChange("aa", "amd64", None, "1:3", "install"),
        protocol.HookChange("mm", "amd64", "4", None, "remove"),
    ]
    assert hook.expectation(changes) == "aa mm zz\ninstalled aa amd64 1:3\ninstalled zz all 2\n"


def test_an_unknown_architecture_leaves_the_record_to_python():
    assert hook.expectation([protocol.HookChange("x", None, None, "1", "install")]) == ""


@pytest.fixture
def post(tmp_path):
    """Run the script with a run directory, a dpkg-query printing ``table`` and an apt-clone
    that notes it was called; (exit status, whether apt-clone ran)."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    table = tmp_path / "dpkg-query.out"
    called = tmp_path / "called"
    (bin_dir / "dpkg-query").write_text(f"#!/bin/sh\nexec /bin/cat {table}\n")
    (bin_dir / "apt-clone").write_text(f'#!/bin/sh\necho "$@" >{called}\n')
    # what the shell does itself, and sort (only when dpkg-query's order is not the expectation's)
    for tool in ("cat", "grep", "touch", "rm", "mv", "head", "tail", "tr", "sed", "sort"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho {tool} >>{tmp_path / "started"}\nexec /usr/bin/{tool} "$@"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)

    def call(expect: str | None, rows: str, **more: str) -> tuple[int, bool]:
        if expect is not None:
            (run / "hook-expect").write_text(expect)
        table.write_text(rows)
        called.unlink(missing_ok=True)
        env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "APT_CLONE_RUN_DIR": str(run),
            "APT_CLONE_TEST_PROGRAM": str(bin_dir / "apt-clone"),
            **more,
        }
        got = subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, check=False)
        return got.returncode, called.exists() and called.read_text() == "hook-post\n"

    call.run = run  # type: ignore[attr-defined]
    return call


def test_nothing_to_check_is_nothing_to_do(post):
    assert post(None, "") == (0, False)
    assert not (post.run / "hook-done").exists()


def test_dpkg_did_what_was_planned_only_the_end_is_noted(post, tmp_path):
    expect = "aa mm zz\ninstalled aa amd64 1:3\ninstalled zz all 2\n"
    rows = "installed aa amd64 1:3\nconfig-files mm amd64 4\nnot-installed qq  \ninstalled zz all 2\n"  # by name
    (post.run / "hook-expect").write_text(expect)
    os.utime(post.run / "hook-expect", (1000, 1000))  # written long before dpkg ended
    assert post(None, rows) == (0, False)
    assert (post.run / "hook-done").stat().st_mtime > 1000 and (post.run / "hook-expect").read_text() == "-\n"
    assert not (tmp_path / "started").exists()  # dpkg-query only: every program started costs every apt run
    os.utime(post.run / "hook-done", (2000, 2000))
    assert post(None, "") == (0, False)  # checked: a later run's post has nothing left to check
    assert (post.run / "hook-done").stat().st_mtime == 2000


@pytest.mark.parametrize(
    "expect, rows",
    [
        ("aa zz\ninstalled aa amd64 1:3\ninstalled zz all 2\n", "installed zz all 2\ninstalled aa amd64 1:3\n"),
        # dpkg-query lists the native architecture's first (here arm64), the expectation is sorted
        (
            "libc6\ninstalled libc6 amd64 2\ninstalled libc6 arm64 2\n",
            "installed libc6 arm64 2\ninstalled libc6 amd64 2\n",
        ),
    ],
)
def test_lines_in_another_order_are_sorted_and_compared_again(post, tmp_path, expect, rows):
    assert post(expect, rows) == (0, False)
    assert (post.run / "hook-done").exists() and (tmp_path / "started").read_text() == "sort\n"


def test_an_expectation_without_its_last_newline_is_read_whole(post):
    assert post("aa\ninstalled aa amd64 1", "installed aa amd64 1\n") == (0, False)
    assert (post.run / "hook-done").exists()


@pytest.mark.parametrize(
    "rows",
    [
        "installed zz all 2\nhalf-configured aa amd64 1:3\n",  # a failed postinst
        "installed zz all 1\ninstalled aa amd64 1:3\n",  # an upgrade that did not happen
        "installed zz all 2\n",  # an install that did not happen
        "installed zz all 2\ninstalled aa amd64 1:3\ninstalled mm amd64 4\n",  # a removal that did not
        "installed zz all 2\ninstalled aa amd64 1:3\ninstalled aa i386 1:3\n",  # another architecture's
    ],
)
def test_anything_else_is_recorded_by_apt_clone(post, rows):
    assert post("aa mm zz\ninstalled aa amd64 1:3\ninstalled zz all 2\n", rows) == (0, True)
    assert not (post.run / "hook-done").exists()


def test_an_empty_expectation_is_recorded_by_apt_clone(post):
    assert post("", "") == (0, True)


def test_a_link_is_never_followed(post, tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("aa\ninstalled aa amd64 1\n")
    os.symlink(target, post.run / "hook-expect")
    assert post(None, "installed aa amd64 1\n") == (0, False)
    assert target.exists() and not (post.run / "hook-done").exists()


def test_apt_clones_own_apt_run_leaves_the_hooked_runs_record_alone(post):
    expect = "aa\ninstalled aa amd64 1\n"
    assert post(expect, "installed aa amd64 2\n", APT_CLONE_ACTIVE="1") == (0, False)
    assert (post.run / "hook-expect").read_text() == expect
