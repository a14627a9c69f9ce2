"""Hybrid quantum-classical classifier: a small CNN whose output angle drives a parameterised qubit circuit."""
