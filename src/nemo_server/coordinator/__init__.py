"""GPU coordinator: VRAM-aware leases with priorities, pre-emption and fencing (port 8002)."""
