#!/usr/bin/python
# Copyright: apt-clone developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: info
short_description: The apt-clone checkpoints of a host, its trial and the layout's risks
description:
  - Reads C(apt-clone -l --json) and, with O(check=true), C(apt-clone check --json); changes
    nothing. A rolling upgrade reads a trial boot's verdict here.
version_added: 0.3.0
extends_documentation_fragment:
  - aptclone.zfs.common
options:
  check:
    description:
      - Also run C(apt-clone check) (the layout, and what can leave the host unbootable).
    type: bool
    default: false
attributes:
  check_mode:
    description: Reads only; the same in check mode.
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
"""

EXAMPLES = r"""
- name: The checkpoints and the layout's risks
  aptclone.zfs.info:
    check: true
  register: host

- name: No risk
  ansible.builtin.assert:
    that: not host.risks
"""

RETURN = r"""
checkpoints:
  description: The checkpoints as C(apt-clone -l --json) lists them, oldest first.
  returned: always
  type: list
  elements: dict
current:
  description: The running checkpoint's name.
  returned: always
  type: str
default:
  description: The checkpoint that boots by default (active, no trial).
  returned: always
  type: str
trial:
  description: The checkpoint armed for a trial boot until its verdict, or none.
  returned: always
  type: str
bad:
  description: The checkpoints whose trial boot failed, by name, with when and why.
  returned: always
  type: dict
check:
  description: C(apt-clone check --json)'s document.
  returned: when O(check=true)
  type: dict
risks:
  description: The texts of the check's findings of level risk.
  returned: when O(check=true)
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.aptclone.zfs.plugins.module_utils.apt_clone import COMMON_ARGS, AptClone

CHECK_FOUND_A_RISK = 4
"""apt-clone check's exit code while it reports a risk."""


def main():
    argument_spec = dict(check=dict(type="bool", default=False))
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    tool = AptClone(module)
    listing = tool.checkpoints()

    def first(key):
        return next((c["name"] for c in listing if c.get(key)), None)

    result = dict(
        changed=False,
        checkpoints=listing,
        current=first("current"),
        default=next((c["name"] for c in listing if c.get("active") and not c.get("trial")), first("active")),
        trial=first("trial"),
        bad=dict((c["name"], c["bad"]) for c in listing if c.get("bad")),
    )
    if module.params["check"]:
        report = tool.run("check", allow=(CHECK_FOUND_A_RISK,))[1]
        result["check"] = report
        result["risks"] = [f["text"] for f in report.get("findings", []) if f.get("level") == "risk"]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
