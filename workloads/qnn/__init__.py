"""Hybrid quantum-classical classifier: a small CNN drives a parameterised qubit circuit."""
