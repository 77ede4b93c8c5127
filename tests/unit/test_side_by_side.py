"""side_by_side: independent calls at once, every one ended before it returns, the first failure raised."""

import threading

import pytest

from apt_clone.side_by_side import side_by_side


def test_the_calls_run_at_once():
    meet = threading.Barrier(2, timeout=10)  # sequential calls would never meet: BrokenBarrierError
    side_by_side(meet.wait, meet.wait)


def test_none_is_skipped_and_one_call_runs_in_this_thread():
    seen = []
    side_by_side(None, lambda: seen.append(threading.current_thread()), None)
    assert seen == [threading.current_thread()]


def test_every_call_ends_before_the_first_failure_is_raised():
    release = threading.Event()
    ended = []

    def slow():
        release.wait(10)
        ended.append("slow")

    def fails():
        release.set()
        raise ValueError("first")

    def fails_too():
        raise KeyError("second")

    with pytest.raises(ValueError, match="first"):
        side_by_side(fails, slow, fails_too)
    assert ended == ["slow"]
