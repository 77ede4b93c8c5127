"""apt planning (python-apt, in a child process) and execution (apt-get, in place or chrooted)."""

HOOK_GUARD_ENV = "APT_CLONE_ACTIVE"
"""Set for every apt run apt-clone starts: apt-clone's own apt hook does nothing when it is set."""
