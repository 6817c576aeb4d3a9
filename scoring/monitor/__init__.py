"""Stage 4, monitor: drift of every input and output against the baseline and the previous
date, the Prometheus textfile and the HTML report (`scoring monitor`, `scoring report`)."""
