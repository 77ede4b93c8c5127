"""How apt-get is run: dpkg's conffile questions, apt-listchanges."""

from __future__ import annotations

from types import SimpleNamespace


def test_dpkgs_conffile_question_is_a_persons_at_a_terminal_else_the_setting_decides():
    """At a terminal without -y dpkg asks and apt-listchanges shows (as under plain apt); without
    one, [apt] conffiles: keep yours, take the package's, or let dpkg ask."""
    from apt_clone.apt.execute import AptTarget, apt_env, apt_get_argv

    def forced(conffiles: str) -> list[str]:
        return [a for a in apt_get_argv("install", ("x",), conffiles=conffiles) if a.startswith("Dpkg::Options::")]

    assert forced("keep") == ["Dpkg::Options::=--force-confdef", "Dpkg::Options::=--force-confold"]
    assert forced("new") == ["Dpkg::Options::=--force-confnew"]
    assert forced("ask") == []
    assert "APT_LISTCHANGES_FRONTEND" not in apt_env(True, person=True)
    assert (
        apt_env(False)["APT_LISTCHANGES_FRONTEND"] == "none" and apt_env(False)["DEBIAN_FRONTEND"] == "noninteractive"
    )

    class Person:
        def person_answers(self) -> bool:
            return True

    from apt_clone.apt import operation
    from apt_clone.engine.opstate import AptOp

    st = AptOp(op="install", command="apt-clone install x", root="/", container="p/ROOT", dataset="p/ROOT/a")
    ctx = SimpleNamespace(runner=None, system=SimpleNamespace(root="/"))
    target = operation._apt_target(ctx, st, Person())  # type: ignore[arg-type]
    assert isinstance(target, AptTarget) and target.conffiles == "ask"
