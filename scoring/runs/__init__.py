"""Running steps: config and use case turned into step arguments, every run recorded in
`runs`, the pipeline of a date, its MLflow run."""
