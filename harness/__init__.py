"""Running the pipeline's real parts locally, for the tests and the benchmark: a Kafka
broker of our own, the ingress and worker as processes, and the stand-in CDP."""
