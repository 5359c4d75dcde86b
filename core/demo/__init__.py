"""`opswatch demo`: a live environment on real parts, all on 127.0.0.1.

scenario (incident timeline) -> fake_backend (HTTP endpoints following it), simulator (writes to
PostgreSQL like the backend and plays its workers), slack_sink (records webhook POSTs),
environment (starts and stops them all, generates the opswatch config).
"""
