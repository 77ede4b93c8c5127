# Copyright: apt-clone developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the aptclone.zfs modules share: running ``apt-clone --json`` and reading its one document.

The modules return apt-clone's own JSON (nothing is parsed twice): a listing is ``apt-clone -l
--json``'s list, an operation's result its outcome document.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

COMMON_ARGS = dict(
    root=dict(type="path", default="/"),
    executable=dict(type="path"),
)
"""Options every module takes: the managed root (apt-clone's ``--root``) and the program."""


class AptClone(object):
    """apt-clone on the managed host, always with ``--json``."""

    def __init__(self, module):
        self.module = module
        self.program = module.params.get("executable") or module.get_bin_path("apt-clone", required=True)
        self.root = module.params.get("root") or "/"

    def run(self, *args, **kwargs):
        """Run ``apt-clone --json --root ROOT ARGS``; its document (fail_json with apt-clone's error
        and exit code when it exits non-zero, unless ``allow`` lists that code)."""
        allow = kwargs.get("allow", ())
        argv = [self.program, "--json", "--root", self.root] + list(args)
        rc, out, err = self.module.run_command(argv, environ_update={"LC_ALL": "C.UTF-8"})
        try:
            doc = json.loads(out) if out.strip() else None
        except ValueError:
            doc = None
        if rc != 0 and rc not in allow:
            msg = doc.get("error") if isinstance(doc, dict) and doc.get("error") else (err.strip() or out.strip())
            result = dict(msg="apt-clone: %s" % msg, rc=rc, cmd=argv, stderr=err)
            if isinstance(doc, dict):
                result["apt_clone"] = doc
            self.module.fail_json(**result)
        if doc is None:
            self.module.fail_json(msg="apt-clone printed no JSON document", rc=rc, cmd=argv, stdout=out, stderr=err)
        return rc, doc

    def checkpoints(self):
        """``apt-clone -l --json``: the checkpoints, oldest first."""
        return self.run("-l")[1]

    def find(self, name, listing=None):
        """The checkpoint called ``name`` in ``listing`` (read now when None), or None."""
        for checkpoint in self.checkpoints() if listing is None else listing:
            if checkpoint["name"] == name:
                return checkpoint
        return None


def flags(checkpoint):
    """The listing's flags: A active, T trial, C current, P pinned, B bad."""
    marks = [
        ("A", checkpoint.get("active")),
        ("T", checkpoint.get("trial")),
        ("C", checkpoint.get("current")),
        ("P", checkpoint.get("pinned")),
        ("B", checkpoint.get("bad")),
    ]
    return "".join(mark for mark, on in marks if on) or "-"


def listing_text(listing):
    """The checkpoints as diff mode shows them: one line each, name, flags and title."""
    return "".join("%s %s %s\n" % (c["name"], flags(c), c.get("title") or "") for c in listing)


def diff_of(before, after):
    """Diff mode's document: the checkpoint list before and after."""
    return dict(
        before=listing_text(before),
        after=listing_text(after),
        before_header="checkpoints",
        after_header="checkpoints",
    )
