"""Argument handling of the libzfs_core backend with a stand-in for the pyzfs module."""

import sys
import types

import pytest

from apt_clone.zfs import (
    RetryPolicy,
    ZfsBusy,
    ZfsExists,
    ZfsHasChildren,
    ZfsHasDependentClones,
    ZfsInvalid,
    ZfsNotFound,
    ZfsUnavailable,
)
from apt_clone.zfs.lzc import LazyModule, LzcZfs, map_lzc_error

from .fakes import FakeRunner


class DatasetNotFound(Exception):
    pass


class SnapshotIsCloned(Exception):
    pass


class DatasetBusy(Exception):
    errno = 16


class SnapshotFailure(Exception):
    def __init__(self, errors):
        super().__init__("snapshot failed")
        self.errors = errors


def fake_lzc(**behaviour):
    calls = []

    def rec(fn):
        def call(*args):
            calls.append((fn, args))
            effect = behaviour.get(fn)
            if isinstance(effect, list) and effect:
                exc = effect.pop(0)
                if exc:
                    raise exc
            elif isinstance(effect, Exception):
                raise effect

        return call

    mod = types.SimpleNamespace(calls=calls)
    for fn in ("lzc_snapshot", "lzc_clone", "lzc_promote", "lzc_destroy", "lzc_destroy_snaps", "lzc_rename"):
        setattr(mod, fn, rec(fn))
    return mod


def make(lzc, runner=None):
    return LzcZfs(lzc, runner or FakeRunner(), retry=RetryPolicy(attempts=3, sleep=lambda s: None))


def test_names_are_bytes_and_user_props_go_to_lzc():
    lzc = fake_lzc()
    z = make(lzc)
    z.snapshot("p/a@s", props={"org.aptclone:checkpoint-of": "b"})
    z.clone("p/a@s", "p/b", {"org.aptclone:title": "T", "canmount": "noauto"})
    z.promote("p/b")
    z.destroy("p/a@s")
    z.destroy("p/b")
    assert lzc.calls[0] == ("lzc_snapshot", ([b"p/a@s"], {b"org.aptclone:checkpoint-of": b"b"}))
    assert lzc.calls[1] == ("lzc_clone", (b"p/b", b"p/a@s", {b"org.aptclone:title": b"T"}))
    assert lzc.calls[2] == ("lzc_promote", (b"p/b",))
    assert lzc.calls[3] == ("lzc_destroy_snaps", ([b"p/a@s"], False))
    assert lzc.calls[4] == ("lzc_destroy", (b"p/b",))
    # the native property goes through the CLI
    assert ("zfs", "set", "canmount=noauto", "p/b") in z.runner.calls


def test_recursive_snapshot_is_one_atomic_call():
    runner = FakeRunner()
    runner.queue = [(0, "p/a\ttype\tfilesystem\t-\np/a/var\ttype\tfilesystem\t-\np/a@x\ttype\tsnapshot\t-\n", "")]
    lzc = fake_lzc()
    make(lzc, runner).snapshot("p/a@s", recursive=True)
    assert lzc.calls == [("lzc_snapshot", ([b"p/a@s", b"p/a/var@s"], {}))]


def test_snapshot_refuses_native_props():
    with pytest.raises(ZfsInvalid):
        make(fake_lzc()).snapshot("p/a@s", props={"compression": "on"})


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (DatasetNotFound("x"), ZfsNotFound),
        (SnapshotIsCloned("x"), ZfsHasDependentClones),
        (SnapshotFailure([DatasetBusy("x")]), ZfsBusy),
        (type("FilesystemExists", (Exception,), {})("x"), ZfsExists),
    ],
)
def test_errors_are_mapped(exc, cls):
    assert isinstance(map_lzc_error(exc, "cannot do it"), cls)


def test_failed_lzc_destroy_is_left_to_the_cli_for_its_verdict():
    lzc = fake_lzc(lzc_destroy=[DatasetBusy("busy")])
    runner = FakeRunner()
    runner.queue = [(1, "", "cannot destroy 'p/b': filesystem has children\nuse '-r' to destroy")]
    with pytest.raises(ZfsHasChildren):
        make(lzc, runner).destroy("p/b")
    assert [c[0] for c in lzc.calls] == ["lzc_destroy"] and runner.calls == [("zfs", "destroy", "p/b")]


def test_not_implemented_falls_back_to_the_cli():
    lzc = fake_lzc(lzc_rename=NotImplementedError("no"))
    runner = FakeRunner()
    runner.queue = [(0, "p/a\ttype\tfilesystem\t-\np/a\tmounted\tno\t-\n", "")] * 2
    make(lzc, runner).rename("p/a", "p/b")
    assert ("zfs", "rename", "p/a", "p/b") in runner.calls


def test_pyzfs_is_loaded_at_the_first_mutation_only(monkeypatch):
    module = types.ModuleType("ac_fake_lzc")
    module.lzc_promote = lambda name: None  # type: ignore[attr-defined]
    lazy = LazyModule("ac_fake_lzc")
    z = LzcZfs(lazy, FakeRunner())
    z.pools()  # a read: the CLI, pyzfs not loaded
    assert lazy._module is None
    monkeypatch.setitem(sys.modules, "ac_fake_lzc", module)
    z.promote("p/b")
    assert lazy._module is module


def test_pyzfs_that_cannot_load_is_a_typed_error():
    z = LzcZfs(LazyModule("ac_no_such_module_here"), FakeRunner())
    with pytest.raises(ZfsUnavailable, match="cannot be loaded"):
        z.promote("p/b")
