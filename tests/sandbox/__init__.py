"""The sandbox: a real Debian root on a real (file-backed) ZFS pool for the demo, tests and benchmarks."""

from .core import Sandbox, create, destroy, pool_name, reboot, sandbox_for, status

__all__ = ["Sandbox", "create", "destroy", "pool_name", "reboot", "sandbox_for", "status"]
