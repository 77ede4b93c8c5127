"""An apt operation's events as the seed's text, and as JSON."""

from __future__ import annotations

from typing import Any

from ..apt import events as ev
from ..apt.request import describe_plan
from ..record import asdict


def lines(event: ev.Event) -> list[str]:
    """The seed's lines for one event."""
    match event:
        case ev.Updating():
            return ["Updating APT sources ..."]
        case ev.Planned(plan=plan):
            return describe_plan(plan)
        case ev.SpaceChecked(results=results):
            return ["Verifying free space...", *results]
        case ev.Downloading():
            return [
                "Downloading upgrades and checking if reboot will be required.",
                "This may take a few minutes. Please wait...",
            ]
        case ev.RebootNeeded(packages=packages):
            return [f"This upgrade will require REBOOT ({', '.join(packages)}): it runs in a new checkpoint."]
        case ev.CreatingCheckpoint(kind_title=title):
            return ["Upgrade is in progress. Please DO NOT interrupt...", f"Creating {title}..."]
        case ev.CheckpointMade(kind_title=title, checkpoint=name, container=container):
            return [
                f"{title} has been created: {name}",
                f"Use 'zfs list -r {container}' command to list all available",
                "upgrade/rollback checkpoints ('apt-clone -l' lists them with their titles)",
            ]
        case ev.InPlaceDone(checkpoint=name):
            return [f"Done. To go back to the state before this change: 'apt-clone -a {name}' and reboot."]
        case ev.UpgradeReady(checkpoint=name):
            return [
                "SYSTEM NOTICE",
                "The first phase of upgrade has completed successfully:",
                f"- created Upgrade Checkpoint '{name}'",
                "- the system is ready to reboot into the new checkpoint",
            ]
        case ev.NextSteps(checkpoint=name):
            return [
                f"Activate upgrade command: 'apt-clone -a {name}'",
                f"Rollback changes command: 'apt-clone -r {name}'",
            ]
        case ev.Activated(dataset=dataset, messages=messages):
            return [f"Upgrade changes for clone '{dataset}' has been activated.", *messages]
        case ev.TrialArmed(messages=messages):
            return list(messages)
        case ev.NotRebooting(root=root, checkpoint=name):
            return [f"Not rebooting: {root} is not this machine's root; its next boot starts '{name}' once."]
        case ev.Paused(step=step, mount_dir=where):
            at = f"; the clone is mounted at {where}" if where else ""
            return [f"Paused after step '{step}'{at}. Continue with 'apt-clone resume'."]
        case ev.NothingToDo():
            return ["Nothing to do: the system is up to date with that request; no checkpoint was made."]
        case ev.Rebooting():
            return ["Operation in progress. Please wait..."]
        case ev.Failed(why=why):
            return [f"Upgrade failed: {why}."]
        case ev.RollingBack():
            return ["Rolling back ..."]
        case ev.RolledBack():
            return ["All upgrade changes now rolled back."]
        case ev.Kept(checkpoint=name, in_clone=in_clone):
            first = (
                f"The failed upgrade is kept in checkpoint '{name}'; the running system was not changed."
                if in_clone
                else f"The running system holds the failed change; '{name}' holds the state before it."
            )
            return [
                first,
                "Rollback changes command: 'apt-clone recover'",
                "Or fix the cause and continue: 'apt-clone resume'.",
            ]
        case ev.Resuming(command=command, step=step):
            return [f"Resuming '{command}' from step '{step}'."]
        case ev.Note(text=text):
            return [text]
    raise TypeError(f"no rendering for {event.kind}")


def as_json(event: ev.Event) -> dict[str, Any]:
    return {"event": event.kind, **asdict(event)}
