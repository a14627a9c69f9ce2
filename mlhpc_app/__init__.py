"""The application: the mlhpc CLI, the AWS adapters and backends, the local runner, the emulator and synth.

It sits above stacks/ and workloads/ and may import both; the foundation (mlhpc/) imports none of it
(the layers contract in pyproject.toml, checked by `make lint-code`).
"""
