#!/usr/bin/python
# Copyright: apt-clone developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: prune
short_description: Remove the apt-clone checkpoints the retention policy does not keep
description:
  - Runs C(apt-clone prune), which keeps the newest checkpoints apt-clone made and the newest of
    each recent day, week and month (C([prune]) of C(/etc/apt-clone/apt-clone.conf)) and removes
    the others, never the running one, the default, a trial, a pinned one or one made by hand.
version_added: 0.3.0
extends_documentation_fragment:
  - aptclone.zfs.common
options:
  dry_run:
    description:
      - Say what would be removed, remove nothing (as check mode does).
    type: bool
    default: false
  include_manual:
    description:
      - Checkpoints made by hand, and the initial one, are candidates too.
    type: bool
    default: false
attributes:
  check_mode:
    description: What would be removed (C(apt-clone prune --dry-run)).
    support: full
  diff_mode:
    description: The checkpoint list before and after.
    support: full
"""

EXAMPLES = r"""
- name: What would go
  aptclone.zfs.prune:
    dry_run: true
  register: would

- name: Prune
  aptclone.zfs.prune:
"""

RETURN = r"""
removed:
  description: The checkpoints removed (none with O(dry_run) or in check mode).
  returned: always
  type: list
  elements: str
would_remove:
  description: The checkpoints the policy removes (what was removed, or would be).
  returned: always
  type: list
  elements: str
apt_clone:
  description: apt-clone's JSON document (the plan, with what each removal frees and why others stay).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.aptclone.zfs.plugins.module_utils.apt_clone import COMMON_ARGS, AptClone, diff_of


def main():
    argument_spec = dict(dry_run=dict(type="bool", default=False), include_manual=dict(type="bool", default=False))
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    tool = AptClone(module)
    dry = module.check_mode or module.params["dry_run"]
    argv = ["-y", "prune"] + (["--dry-run"] if dry else []) + (["--include-manual"] if module.params["include_manual"] else [])
    before = tool.checkpoints() if module._diff else None
    doc = tool.run(*argv)[1]
    would = [r["name"] for r in doc.get("plan", {}).get("remove", [])]
    result = dict(
        changed=bool(doc.get("removed")) or (module.check_mode and bool(would)),
        removed=doc.get("removed") or [],
        would_remove=would,
        apt_clone=doc,
    )
    if before is not None and result["changed"]:
        after = [c for c in before if c["name"] not in would] if dry else tool.checkpoints()
        result["diff"] = diff_of(before, after)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
