"""apt operations: planning, execution, the chroot, the apt operation and its request, the APT hook."""
