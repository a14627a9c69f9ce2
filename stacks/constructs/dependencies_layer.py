"""A Lambda layer holding a function's native Python packages, built for its runtime by `make setup`."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks.lambda_deps import Dependencies, LambdaPython

ARCHITECTURES = {"x86_64": lambda_.Architecture.X86_64, "arm64": lambda_.Architecture.ARM_64}


def runtime(python: LambdaPython) -> lambda_.Runtime:
    """Return CDK's runtime object for a Lambda Python runtime (the one the wheels were built for)."""
    (found,) = [r for r in lambda_.Runtime.ALL if r.name == python.runtime_name]
    return found


class DependenciesLayer(Construct):
    """The packages of ``dependencies`` as a layer (``/opt/python``); ``runtime`` and ``architecture`` match it.

    The directory comes from :meth:`stacks.lambda_deps.Dependencies.require`, which stops synthesis
    with the fix (`make setup`) when it has not been built. A function that takes the layer must
    use ``runtime`` and ``architecture``: the wheels' compiled code is built for those only.
    """

    def __init__(self, scope: Construct, construct_id: str, *, dependencies: Dependencies) -> None:
        super().__init__(scope, construct_id)
        python = dependencies.python
        self.runtime = runtime(python)
        self.architecture = ARCHITECTURES[python.architecture]
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            # Bytecode a host Python wrote there (an import from the directory) is neither Lambda's
            # nor part of the build: left out, so it cannot change the asset hash either.
            code=lambda_.Code.from_asset(str(dependencies.require()), exclude=["**/__pycache__", "**/*.pyc"]),
            compatible_runtimes=[self.runtime],
            compatible_architectures=[self.architecture],
            description=f"{', '.join(dependencies.pins())} for {python.runtime_name} ({python.architecture})",
            removal_policy=RemovalPolicy.DESTROY,  # code, not data: the function's next version replaces it
        )
