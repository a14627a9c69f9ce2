"""hello: the CLI's own test workload — a distributed, checkpointed sum with an exact answer."""
