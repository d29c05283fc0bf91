"""Resilience under faults: servers and workers killed, connections cut, the database away,
backups restored. Each test bounds its own time and load and stops by itself."""
