#!/usr/bin/python
# Copyright: apt-clone developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: upgrade
short_description: Upgrade, install or remove Debian packages under an apt-clone checkpoint
description:
  - Runs an apt operation through C(apt-clone --json -y), which plans it with python-apt,
    snapshots and clones the root, and runs apt in place (a Rollback Checkpoint) or in the clone
    (an Upgrade Checkpoint, the running system untouched).
  - A failed operation fails the task with apt-clone's error; apt-clone has rolled it back, so the
    host's datasets and packages are as before.
  - Nothing to do (the plan is empty) is no change, so a second run of the same task reports none.
version_added: 0.3.0
extends_documentation_fragment:
  - aptclone.zfs.common
options:
  operation:
    description:
      - The apt operation.
    type: str
    choices: [dist-upgrade, upgrade, install, remove]
    default: dist-upgrade
  packages:
    description:
      - The packages of O(operation=install) or O(operation=remove).
    type: list
    elements: str
    default: []
  in_clone:
    description:
      - Run apt in the clone (an Upgrade Checkpoint). apt-clone does so by itself when a package
        needs a reboot.
    type: bool
    default: false
  then:
    description:
      - After an upgrade in the clone, V(nothing) leaves it to be activated later, V(activate)
        makes it the default, V(reboot) arms a trial boot of it and, on a managed root of C(/),
        reboots the host (the connection drops; prefer V(nothing), then
        M(aptclone.zfs.checkpoint) with O(aptclone.zfs.checkpoint#module:once=true) and
        M(ansible.builtin.reboot)).
    type: str
    choices: [nothing, activate, reboot]
    default: nothing
  update:
    description:
      - Update the APT sources first (not in check mode, which plans from the lists apt has).
    type: bool
    default: true
  prune:
    description:
      - When the pools are too full for the change, prune old checkpoints first.
    type: bool
    default: false
attributes:
  check_mode:
    description: The plan (C(apt-clone --dry-run)) from the lists apt has; nothing is changed.
    support: full
  diff_mode:
    description: The checkpoint list before and after.
    support: full
"""

EXAMPLES = r"""
- name: Upgrade in a clone; the running system is untouched
  aptclone.zfs.upgrade:
    operation: dist-upgrade
    in_clone: true
  register: upgraded

- name: Install a package under a Rollback Checkpoint
  aptclone.zfs.upgrade:
    operation: install
    packages: [nginx]
"""

RETURN = r"""
status:
  description: apt-clone's outcome, V(done), V(nothing) (an empty plan) or V(planned) (check mode).
  returned: always
  type: str
  sample: done
checkpoint:
  description: The checkpoint made (in place, it keeps the state before; in the clone, it holds the upgrade).
  returned: always
  type: str
  sample: rootfs-nmu-002
mode:
  description: Where apt ran or would run, V(in-place) or V(clone).
  returned: always
  type: str
changes:
  description: The package changes, each a list of name, old version and new version (null when not installed).
  returned: always
  type: list
  elements: list
plan:
  description: The plan apt-clone made with python-apt.
  returned: always
  type: dict
reboot_required:
  description: Whether the change needs a reboot (a kernel, libc or systemd changed, or a maintainer script asked for one).
  returned: always
  type: bool
apt_clone:
  description: The whole JSON document apt-clone printed (the keys above come from it).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.aptclone.zfs.plugins.module_utils.apt_clone import COMMON_ARGS, AptClone, diff_of


def main():
    argument_spec = dict(
        operation=dict(type="str", default="dist-upgrade", choices=["dist-upgrade", "upgrade", "install", "remove"]),
        packages=dict(type="list", elements="str", default=[]),
        in_clone=dict(type="bool", default=False),
        then=dict(type="str", default="nothing", choices=["nothing", "activate", "reboot"]),
        update=dict(type="bool", default=True),
        prune=dict(type="bool", default=False),
    )
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[("operation", "install", ["packages"]), ("operation", "remove", ["packages"])],
    )
    params = module.params
    if params["packages"] and params["operation"] in ("dist-upgrade", "upgrade"):
        module.fail_json(msg="packages are for operation=install or operation=remove")
    tool = AptClone(module)
    argv = ["-y"] + (["-s"] if params["in_clone"] else []) + [params["operation"]] + params["packages"]
    argv += ["--then", params["then"]]
    if module.check_mode:
        argv.append("--dry-run")
    else:
        argv += ([] if params["update"] else ["--no-update"]) + (["--prune"] if params["prune"] else [])
    before = tool.checkpoints() if module._diff else None
    doc = tool.run(*argv)[1]
    result = dict(
        changed=doc.get("status") in ("done", "planned"),
        status=doc.get("status"),
        checkpoint=doc.get("checkpoint"),
        mode=doc.get("mode"),
        changes=doc.get("changes") or [],
        plan=doc.get("plan"),
        reboot_required=bool(doc.get("reboot_required")),
        apt_clone=doc,
    )
    if before is not None and result["changed"]:
        made = dict(name="(a new checkpoint)", title="apt-clone %s" % " ".join([params["operation"]] + params["packages"]))
        result["diff"] = diff_of(before, before + [made] if module.check_mode else tool.checkpoints())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
