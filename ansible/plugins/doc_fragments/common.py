# Copyright: apt-clone developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """The options every aptclone.zfs module takes."""

    DOCUMENTATION = r"""
author:
  - apt-clone developers (@apt-clone)
options:
  root:
    description:
      - The root directory of the managed system (apt-clone's C(--root)).
    type: path
    default: /
  executable:
    description:
      - The apt-clone program to run (default C(apt-clone) from E(PATH)).
    type: path
requirements:
  - apt-clone (the C(apt-clone-zfs) Debian package) on the managed host, run as root.
notes:
  - The module runs C(apt-clone --json) and returns the document it prints; its options and
    results are apt-clone's own (see C(man apt-clone)).
"""
