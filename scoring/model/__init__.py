"""Models: the registry (aliases resolved to versions), signatures, safe loading, and the
outputs of each task."""
