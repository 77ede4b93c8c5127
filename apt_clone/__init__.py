"""apt-clone: transactional apt operations checkpointed with ZFS."""

__version__ = "0.3.0"
