"""Models in: the use case's trainer (`scoring train`) or a model trained elsewhere with its
monitoring baseline (`scoring baseline`)."""
