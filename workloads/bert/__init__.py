"""BERT-family sentence-pair inference: Neuron, GPU and CPU paths, a dynamically batched HTTP server, a load test."""
