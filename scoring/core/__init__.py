"""The shared core: configuration, contracts, table locations, Delta I/O, SQL text, session."""
