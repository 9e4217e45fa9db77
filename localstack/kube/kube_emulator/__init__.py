"""A Kubernetes API emulator for drctl's integration tests and local DR drills."""
