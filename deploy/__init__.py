"""Build and deployment tooling (not shipped in the wheel): `make dist`, platform job files."""
