"""The foundation every part imports: the config model, the workload contract (spec, invocation codec),
the stack/CLI contract (names, output keys), placement, errors and instance facts.

It imports nothing of workloads/, stacks/ or mlhpc_app/ (the layers contract in pyproject.toml).
"""
