"""Stage 3, score: a features date scored by a pinned model version in an Arrow UDF, written
to `scores` and `scores_current` (`scoring score`)."""
