"""Map the config's removal policy names to CDK's, for the stateful resources that state theirs."""

from aws_cdk import RemovalPolicy

from mlhpc.config.common import RemovalPolicyName

_REMOVAL = {RemovalPolicyName.RETAIN: RemovalPolicy.RETAIN, RemovalPolicyName.DESTROY: RemovalPolicy.DESTROY}


def removal_policy(name: RemovalPolicyName) -> RemovalPolicy:
    """Return the CDK removal policy for a config value (retain or destroy)."""
    return _REMOVAL[name]
