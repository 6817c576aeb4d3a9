"""Stage 2, features: each source as known at a date, the use case's feature code, the
features contract enforced (`scoring features`)."""
