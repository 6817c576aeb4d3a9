"""`scoring maintain`: table retention, compaction and VACUUM, and archival of raw drops."""
