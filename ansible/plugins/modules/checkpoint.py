#!/usr/bin/python
# Copyright: apt-clone developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: checkpoint
short_description: Manage apt-clone checkpoints (ZFS boot environments) of a Debian host
description:
  - Create, destroy, activate (for good or once, as a trial boot), pin and unpin a checkpoint by
    name, through C(apt-clone --json). Idempotent by name; a checkpoint already in the wanted
    state is left alone.
  - The Linux counterpart of M(community.general.beadm), with diff mode (the checkpoint list
    before and after).
version_added: 0.3.0
extends_documentation_fragment:
  - aptclone.zfs.common
options:
  name:
    description:
      - The checkpoint's name (C(rootfs-nmu-003), or one given at creation).
    type: str
    required: true
  title:
    description:
      - With O(state=present), its title (set on an existing checkpoint when it differs).
    type: str
  state:
    description:
      - V(present) makes it (a Rollback Checkpoint of the running system) unless it exists.
      - V(absent) destroys it and its snapshots (apt-clone promotes what depends on it); the
        running checkpoint is refused.
      - V(activated) makes it boot from now on, or with O(once=true) boots it once as a trial
        that becomes the default only after a healthy boot.
      - V(pinned) keeps it whatever the retention policy says; V(unpinned) lets the policy decide.
    type: str
    choices: [present, absent, activated, pinned, unpinned]
    default: present
  once:
    description:
      - With O(state=activated), arm a trial boot instead of changing the default.
    type: bool
    default: false
  force:
    description:
      - With O(state=absent), when O(name) boots next, first activate this other checkpoint.
    type: str
attributes:
  check_mode:
    description: Says what would change; changes nothing.
    support: full
  diff_mode:
    description: The checkpoint list before and after.
    support: full
"""

EXAMPLES = r"""
- name: A checkpoint before maintenance
  aptclone.zfs.checkpoint:
    name: before-maintenance
    title: before the maintenance window

- name: Boot the upgraded checkpoint once, as a trial
  aptclone.zfs.checkpoint:
    name: rootfs-nmu-004
    state: activated
    once: true

- name: Keep it whatever prune says
  aptclone.zfs.checkpoint:
    name: before-maintenance
    state: pinned

- name: Gone
  aptclone.zfs.checkpoint:
    name: before-maintenance
    state: absent
"""

RETURN = r"""
checkpoint:
  description: The checkpoint as C(apt-clone -l --json) lists it after the task (none once destroyed).
  returned: always
  type: dict
  sample:
    name: rootfs-nmu-001
    title: before the maintenance window
    active: false
    current: false
    trial: false
    pinned: true
    kind: manual
apt_clone:
  description: The JSON document of the apt-clone command run (none when nothing was run).
  returned: changed and not in check mode
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.aptclone.zfs.plugins.module_utils.apt_clone import COMMON_ARGS, AptClone, diff_of


def _commands(params, found):
    """The apt-clone commands that bring checkpoint ``found`` (None: absent) to the wanted state."""
    name, state = params["name"], params["state"]
    if state == "present":
        if found is None:
            return [["create", "-n", name] + (["--title", params["title"]] if params["title"] else [])]
        if params["title"] is not None and found.get("title") != params["title"]:
            return [["title", name, params["title"]]]
        return []
    if state == "absent":
        if found is None:
            return []
        return [["-y", "destroy", name] + (["--force", params["force"]] if params["force"] else [])]
    if found is None:
        return None
    if state == "activated":
        if params["once"]:
            return [] if found.get("trial") else [["-y", "activate", name, "--once"]]
        return [] if found.get("active") and not found.get("trial") else [["-y", "activate", name]]
    if state == "pinned":
        return [] if found.get("pinned") else [["pin", name]]
    return [["unpin", name]] if found.get("pinned") else []


def _predicted(before, params):
    """The list check mode's diff shows: ``before`` as the commands would leave it."""
    name, state = params["name"], params["state"]
    after = [dict(c) for c in before]
    this = [c for c in after if c["name"] == name]
    if state == "present" and not this:
        after.append(dict(name=name, title=params["title"] or "", kind="manual"))
    elif state == "present":
        this[0]["title"] = params["title"]
    elif state == "absent":
        after = [c for c in after if c["name"] != name]
    elif state == "activated" and params["once"]:
        this[0]["trial"] = True
    elif state == "activated":
        for c in after:
            c["active"] = c["name"] == name
    else:
        this[0]["pinned"] = state == "pinned"
    return after


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        title=dict(type="str"),
        state=dict(type="str", default="present", choices=["present", "absent", "activated", "pinned", "unpinned"]),
        once=dict(type="bool", default=False),
        force=dict(type="str"),
    )
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    tool = AptClone(module)
    before = tool.checkpoints()
    found = tool.find(module.params["name"], before)
    commands = _commands(module.params, found)
    if commands is None and module.check_mode:  # an earlier task of the play may make it
        module.warn("no checkpoint named '%s' yet: it must be made before this task" % module.params["name"])
        module.exit_json(changed=True, checkpoint=None)
    if commands is None:
        module.fail_json(msg="apt-clone: no checkpoint named '%s'" % module.params["name"])
    result = dict(changed=bool(commands), checkpoint=found)
    if commands and module.check_mode and module._diff:
        result["diff"] = diff_of(before, _predicted(before, module.params))
    if commands and not module.check_mode:
        for argv in commands:
            result["apt_clone"] = tool.run(*argv)[1]
        after = tool.checkpoints()
        result["checkpoint"] = tool.find(module.params["name"], after)
        if module._diff:
            result["diff"] = diff_of(before, after)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
