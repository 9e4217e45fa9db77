"""drctl's local DR environment: moto, the Kubernetes API emulator, a PostgreSQL primary and
streaming standby, and a health application, all on 127.0.0.1 (see ../README.md)."""
