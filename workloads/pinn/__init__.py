"""Physics-informed neural networks: a problem registry, a distributed resumable trainer, a benchmark."""
