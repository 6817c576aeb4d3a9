"""`make bench`: our score step side by side with mlflow's spark_udf, pandas and the Spark floor.

See bench/RESULTS.md for what is measured and the latest numbers; `python -m bench --help`.
"""
