"""Model quality: realized metrics once outcomes arrive, CBPE estimates before (docs/monitoring.md)."""
