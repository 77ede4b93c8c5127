"""The GRUB menu generator: quoting, ids, and grub-script-check on 1, 50 and 500 checkpoints."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from apt_clone.boot import grub
from apt_clone.runner import Runner

HOSTILE = ["it's", '"$(reboot)"', "`id`", "a; b", "new\nline", "ü日本", "$HOME ${x}", "back\\slash", "}{ ]["]


def unquote(word: str) -> str:
    """The inverse of :func:`quote` for the words it produces (what GRUB reads back)."""
    out, i = [], 0
    while i < len(word):
        if word[i] == "'":
            j = word.index("'", i + 1)
            out.append(word[i + 1 : j])
            i = j + 1
        elif word[i] == "\\":
            out.append(word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return "".join(out)


def entries(n: int, title: str = "Upgrade Checkpoint") -> list[grub.MenuEntry]:
    return [
        grub.MenuEntry(f"rootfs-nmu-{i:03d}", f"rpool/ROOT/rootfs-nmu-{i:03d}", f"{title} [{i}]", ("6.1.0-13-amd64",))
        for i in range(n)
    ]


@pytest.mark.parametrize("text", HOSTILE)
def test_quote_roundtrips(text):
    expected = text.replace("\n", " ")
    assert unquote(grub.quote(text)) == expected
    assert "\n" not in grub.quote(text)


needs_grub = pytest.mark.skipif(shutil.which("grub-script-check") is None, reason="grub-common not installed")


@needs_grub
@pytest.mark.parametrize("n", [1, 50, 500])
def test_menus_pass_grub_script_check(tmp_path, n):
    path = tmp_path / "apt-clone.cfg"
    path.write_text(grub.render_menu(entries(n)))
    subprocess.run(["grub-script-check", str(path)], check=True)
    assert path.read_text().count("menuentry ") == n


@needs_grub
def test_hostile_titles_come_out_literal(tmp_path):
    es = [grub.MenuEntry(f"cp{i}", f"rpool/ROOT/cp{i}", t, ("6.1.0-1-amd64",)) for i, t in enumerate(HOSTILE)]
    text = grub.render_menu(es)
    path = tmp_path / "m.cfg"
    path.write_text(text)
    subprocess.run(["grub-script-check", str(path)], check=True)
    titles = re.findall(r"^  menuentry ('(?:[^']|'\\'')*') --id", text, flags=re.M)
    assert [unquote(t) for t in titles] == [t.replace("\n", " ") for t in HOSTILE]
    # nothing outside quotes on a menuentry line but the words we wrote
    for line in text.splitlines():
        if line.strip().startswith("menuentry"):
            assert line.rstrip().endswith("{")


def test_entry_paths_ids_and_root():
    (e,) = entries(1)
    text = grub.render_menu([e, grub.MenuEntry("nokernel", "rpool/ROOT/nokernel", "x", ())])
    assert "--id 'apt-clone-rootfs-nmu-000'" in text
    assert "linux '/ROOT/rootfs-nmu-000@/boot/vmlinuz-6.1.0-13-amd64' 'root=ZFS=rpool/ROOT/rootfs-nmu-000' 'ro'" in text
    assert "initrd '/ROOT/rootfs-nmu-000@/boot/initrd.img-6.1.0-13-amd64'" in text
    assert "# nokernel: no kernel recorded" in text
    boot = grub.MenuEntry("b", "rpool/ROOT/b", "B", ("6.1",), boot_dataset="bpool/BOOT/b")
    text = grub.render_menu([boot])
    assert "search --no-floppy --label --set=root 'bpool'" in text and "'/BOOT/b@/vmlinuz-6.1'" in text


def test_saved_entry_names():
    assert grub.saved_entry("rootfs-nmu-001") == "apt-clone>apt-clone-rootfs-nmu-001"
    assert grub.name_from_entry("apt-clone>apt-clone-rootfs-nmu-001") == "rootfs-nmu-001"
    assert grub.name_from_entry("gnulinux-simple-xyz") is None


def test_kernels_in_sorts_newest_first(tmp_path):
    for v in ("6.1.0-9-amd64", "6.1.0-13-amd64", "6.12.1-amd64"):
        (tmp_path / f"vmlinuz-{v}").write_text("")
        (tmp_path / f"initrd.img-{v}").write_text("")
    (tmp_path / "vmlinuz-orphan").write_text("")
    assert grub.kernels_in(str(tmp_path)) == ["6.12.1-amd64", "6.1.0-13-amd64", "6.1.0-9-amd64"]


@needs_grub
def test_menu_without_any_kernel_is_still_valid(tmp_path):
    path = tmp_path / "m.cfg"
    path.write_text(grub.render_menu([grub.MenuEntry("a", "rpool/ROOT/a", "A", ())]))
    subprocess.run(["grub-script-check", str(path)], check=True)
    assert "submenu" not in path.read_text()


def test_cmdline_from_proc_drops_per_entry_words(tmp_path):
    path = tmp_path / "cmdline"
    path.write_text("BOOT_IMAGE=/ROOT/a@/boot/vmlinuz root=ZFS=rpool/ROOT/a ro quiet console=ttyS0,115200\n")
    assert grub.cmdline_from_proc(str(path)) == "ro quiet console=ttyS0,115200"
    assert grub.cmdline_from_proc(str(tmp_path / "missing")) == "ro"


ENV_VALUES = {
    "saved_entry": "apt-clone>apt-clone-rootfs-nmu-001",
    "spaces": "a b  c",
    "backslash": "x\\y\\\\z\\",
    "equals": "k=v=w",
    "unicode": "ü 日本",
    "hash": "#not a comment",
}


@needs_grub
def test_envblk_read_from_the_file_matches_grub_editenv(tmp_path):
    env = str(tmp_path / "grubenv")
    subprocess.run(["grub-editenv", env, "create"], check=True)
    assert grub.parse_envblk(Path(env).read_bytes()) == {}
    subprocess.run(["grub-editenv", env, "set", *(f"{k}={v}" for k, v in ENV_VALUES.items())], check=True)
    subprocess.run(["grub-editenv", env, "set", "gone=1"], check=True)
    subprocess.run(["grub-editenv", env, "unset", "gone"], check=True)
    listed = subprocess.run(["grub-editenv", env, "list"], capture_output=True, text=True, check=True).stdout
    assert grub.parse_envblk(Path(env).read_bytes()) == dict(line.split("=", 1) for line in listed.splitlines())
    assert grub.GrubEnv(env).read() == ENV_VALUES


@needs_grub
def test_envblk_newline_escape_and_unset_only_when_set(tmp_path):
    env = str(tmp_path / "grubenv")
    subprocess.run(["grub-editenv", env, "create"], check=True)
    subprocess.run(["grub-editenv", env, "set", "two=line\none", "after=x"], check=True)
    assert grub.parse_envblk(Path(env).read_bytes()) == {"two": "line\none", "after": "x"}
    assert grub.parse_envblk(b"not an environment block") is None

    calls = []

    class Counting(Runner):
        def run(self, argv, **kw):
            calls.append(list(argv))
            return super().run(argv, **kw)

    e = grub.GrubEnv(env, Counting())
    e.unset("next_entry")  # not set: nothing runs
    assert calls == []
    e.unset("after")
    assert calls == [["grub-editenv", env, "unset", "after"]] and e.read() == {"two": "line\none"}


def test_edit_menu_changes_only_the_named_entries():
    text = grub.render_menu(entries(4), "ro quiet")
    renamed = grub.MenuEntry("renamed", "rpool/ROOT/renamed", "Renamed", ("6.1.0-13-amd64",))
    new = grub.MenuEntry("rootfs-nmu-009", "rpool/ROOT/rootfs-nmu-009", "New", ("6.1.0-14-amd64",))
    changes = {"rootfs-nmu-001": None, "rootfs-nmu-002": renamed, "rootfs-nmu-009": new}
    edited = grub.edit_menu(text, changes, "ro quiet")
    assert edited is not None
    text2, checked = edited
    wanted = [entries(4)[0], renamed, entries(4)[3], new]  # a rename keeps its place, a new one comes last
    assert text2 == grub.render_menu(wanted, "ro quiet")
    assert checked == grub.render_entry(renamed, "ro quiet") + grub.render_entry(new, "ro quiet")


def test_edit_menu_wants_a_whole_rendering_when_it_cannot_trust_the_file():
    text = grub.render_menu(entries(2), "ro")
    assert grub.edit_menu(text, {}, "ro quiet") is None  # other kernel options: every entry changes
    assert grub.edit_menu(text.replace("  }\n", "  }\nset x=1\n", 1), {}, "ro") is None  # edited by hand
    assert grub.edit_menu("# an older apt-clone's menu\n", {}, "ro") is None
    empty = grub.render_menu([], "ro")
    one = grub.MenuEntry("a", "rpool/ROOT/a", "A", ("6.1",))
    assert grub.edit_menu(empty, {"a": one}, "ro") == (grub.render_menu([one], "ro"), grub.render_entry(one, "ro"))
    last = grub.edit_menu(grub.render_menu([one], "ro"), {"a": None}, "ro")
    assert last is not None and last[0] == empty  # GRUB refuses an empty submenu: comments only


@needs_grub
def test_an_edited_menu_passes_grub_script_check(tmp_path):
    runner = Runner()
    grub.write_menu(str(tmp_path), grub.render_menu(entries(3)), runner)
    edited = grub.edit_menu(grub.read_menu(str(tmp_path)) or "", {"x": entries(5)[4], "rootfs-nmu-000": None})
    assert edited is not None
    grub.write_menu(str(tmp_path), edited[0], runner, checked=edited[1])
    subprocess.run(["grub-script-check", str(tmp_path / grub.MENU_FILE)], check=True)
    bad = grub.MenuEntry("y", "rpool/ROOT/y", "Y", ("6.1",))
    broken = grub.edit_menu(edited[0], {"y": bad})
    assert broken is not None
    with pytest.raises(Exception, match="grub-script-check"):  # the new lines are checked
        grub.write_menu(str(tmp_path), broken[0], runner, checked=[*broken[1], "  }"])
    assert "rpool/ROOT/y" not in (tmp_path / grub.MENU_FILE).read_text()


def test_read_menu_refuses_a_link_and_a_file_others_can_write(tmp_path):
    (tmp_path / "real.cfg").write_text("x")
    (tmp_path / grub.MENU_FILE).symlink_to(tmp_path / "real.cfg")
    assert grub.read_menu(str(tmp_path)) is None
    (tmp_path / grub.MENU_FILE).unlink()
    (tmp_path / grub.MENU_FILE).write_text("x")
    (tmp_path / grub.MENU_FILE).chmod(0o666)
    assert grub.read_menu(str(tmp_path)) is None
    (tmp_path / grub.MENU_FILE).chmod(0o644)
    assert grub.read_menu(str(tmp_path)) == "x"


@needs_grub
def test_an_entry_checked_ahead_is_not_checked_again_when_the_menu_takes_it(tmp_path, monkeypatch):
    """Checked while its checkpoint's clones are made (issue #36: every apt run's menu entry);
    the write that adds it starts no grub-script-check; an entry as it was is not new."""
    calls: list[list[str]] = []

    class Counting(Runner):
        def run(self, argv, **kw):  # type: ignore[no-untyped-def]
            calls.append(list(argv))
            return super().run(argv, **kw)

    monkeypatch.setattr(grub, "_PASSED", set())
    runner = Counting()
    grub.write_menu(str(tmp_path), grub.render_menu(entries(3)), runner)
    new = entries(5)[4]
    grub.check_entry(str(tmp_path), new, "ro", runner)
    assert len(calls) == 2 and sorted(p.name for p in tmp_path.iterdir()) == [grub.MENU_FILE]
    unchanged = entries(3)[0]
    edited = grub.edit_menu(grub.read_menu(str(tmp_path)) or "", {new.name: new, unchanged.name: unchanged})
    assert edited is not None and edited[1] == grub.render_entry(new, "ro")  # the unchanged one: not new
    grub.write_menu(str(tmp_path), edited[0], runner, checked=edited[1])
    assert len(calls) == 2  # checked ahead: nothing runs
    subprocess.run(["grub-script-check", str(tmp_path / grub.MENU_FILE)], check=True)
    other = grub.MenuEntry(new.name, new.dataset, "Another title", new.kernels)  # not what was checked
    edited = grub.edit_menu(grub.read_menu(str(tmp_path)) or "", {new.name: other})
    assert edited is not None
    grub.write_menu(str(tmp_path), edited[0], runner, checked=edited[1])
    assert len(calls) == 3 and calls[-1][0] == "grub-script-check"


@needs_grub
def test_an_entry_that_fails_ahead_is_refused_when_the_menu_takes_it(tmp_path, monkeypatch):
    monkeypatch.setattr(grub, "_PASSED", set())
    monkeypatch.setattr(grub, "render_entry", lambda e, cmdline="ro": [grub.BLOCK + e.name, "  menuentry 'x' {"])
    runner = Runner()
    grub.write_menu(str(tmp_path), grub.render_menu([]), runner)
    bad = entries(1)[0]
    with pytest.raises(Exception, match="grub-script-check"):
        grub.check_entry(str(tmp_path), bad, "ro", runner)
    edited = grub.edit_menu(grub.read_menu(str(tmp_path)) or "", {bad.name: bad})
    assert edited is not None
    with pytest.raises(Exception, match="grub-script-check"):
        grub.write_menu(str(tmp_path), edited[0], runner, checked=edited[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == [grub.MENU_FILE]
