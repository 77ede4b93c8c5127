"""Every event an apt operation emits has the seed's text and a JSON form."""

from __future__ import annotations

import json

from apt_clone.apt import events as ev
from apt_clone.cli.render_events import as_json, lines

SAMPLES = [
    ev.Updating(),
    ev.SpaceChecked(("Success. Upgrade requires 0.00MB of available free space.",)),
    ev.Downloading(),
    ev.RebootNeeded(("ac-kernel",)),
    ev.CreatingCheckpoint("Upgrade Checkpoint"),
    ev.CheckpointMade("Upgrade Checkpoint", "rootfs-nmu-001", "rpool/ROOT"),
    ev.InPlaceDone("rootfs-nmu-001"),
    ev.UpgradeReady("rootfs-nmu-001"),
    ev.NextSteps("rootfs-nmu-001"),
    ev.Activated("rpool/ROOT/rootfs-nmu-001", ("Pool 'rpool' bootfs is now 'rpool/ROOT/rootfs-nmu-001'.",)),
    ev.TrialArmed(("Next boot only: 'rpool/ROOT/rootfs-nmu-001'",)),
    ev.NotRebooting("/mnt", "rootfs-nmu-001"),
    ev.Paused("mount", "/run/apt-clone/mnt/rootfs-nmu-001.x"),
    ev.NothingToDo(),
    ev.Rebooting(),
    ev.Failed("apt-get exited with status 100"),
    ev.RollingBack(),
    ev.RolledBack(),
    ev.Kept("rootfs-nmu-001", True),
    ev.Resuming("apt-clone dist-upgrade", "apt"),
    ev.Note("a line"),
]


def test_every_event_renders_as_text_and_json():
    kinds = {type(e) for e in SAMPLES} | {ev.Planned}  # Planned renders describe_plan (tested with the plan)
    declared = {c for c in vars(ev).values() if isinstance(c, type) and issubclass(c, ev.Event) and c is not ev.Event}
    assert declared == kinds
    for event in SAMPLES:
        assert lines(event) and all(isinstance(line, str) and line for line in lines(event))
        assert json.loads(json.dumps(as_json(event)))["event"] == event.kind


def test_the_seeds_words():
    assert lines(ev.CheckpointMade("Upgrade Checkpoint", "rootfs-nmu-001", "rpool/ROOT")) == [
        "Upgrade Checkpoint has been created: rootfs-nmu-001",
        "Use 'zfs list -r rpool/ROOT' command to list all available",
        "upgrade/rollback checkpoints ('apt-clone -l' lists them with their titles)",
    ]
    assert lines(ev.Paused("mount", None)) == ["Paused after step 'mount'. Continue with 'apt-clone resume'."]
