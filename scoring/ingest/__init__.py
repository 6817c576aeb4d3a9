"""Stage 1, ingest: raw drops checked against their contracts, bad records quarantined, the
rest merged into bronze (`scoring ingest`)."""
