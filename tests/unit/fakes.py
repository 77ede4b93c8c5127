"""A fake runner for parsing and error-mapping unit tests (never the only proof)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from apt_clone.runner import Completed, Runner

Responder = Callable[[tuple[str, ...]], Completed | None]


class FakeRunner(Runner):
    def __init__(self, responses: Mapping[tuple[str, ...], tuple[int, str, str]] | None = None) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.responses = dict(responses or {})
        self.queue: list[tuple[int, str, str]] = []
        self.ahead: list[tuple[str, ...]] = []

    def read_ahead(self, argvs: object) -> None:  # type: ignore[override]
        self.ahead += [tuple(a) for a in argvs]  # type: ignore[attr-defined]

    def run(self, argv: Sequence[str], **kwargs: object) -> Completed:  # type: ignore[override]
        key = tuple(argv)
        self.calls.append(key)
        if key in self.responses:
            rc, out, err = self.responses[key]
        elif self.queue:
            rc, out, err = self.queue.pop(0)
        else:
            rc, out, err = 0, "", ""
        return Completed(key, rc, out, err)
