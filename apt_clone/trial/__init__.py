"""Trial boots: the boot-time commands, the verdict and the health checks."""
