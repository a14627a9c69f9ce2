#!/usr/bin/env python3
"""CDK entry point: load the config, build the stacks, check them with cdk-nag, synthesize.

Choose the config with `cdk synth -c config=config/examples/p5-efa-training.yaml`
or MLHPC_CONFIG=...; the default is config/default.yaml.
"""

import os
import sys

from aws_cdk import App

from mlhpc.config import ConfigError, Level, load_config_with_warnings
from mlhpc.config.hpc import workload_placement
from mlhpc.errors import MlhpcError
from stacks.assembly import build_app
from workloads.registry import all_specs


def main() -> int:
    """Synthesize the app, or print every config problem and exit 1."""
    chosen = App().node.try_get_context("config") or os.environ.get("MLHPC_CONFIG")
    try:
        config, warnings = load_config_with_warnings(chosen)
        # Every workload's job must fit the queue it goes to; HpcStack would stop on the same issues.
        placement = workload_placement(config, all_specs())
        errors = [i for i in placement if i.level is Level.ERROR]
        if errors:
            raise ConfigError(errors, source=chosen, warnings=warnings)
        warnings = [*warnings, *placement]
    except ConfigError as err:
        print(err, file=sys.stderr)
        print("Run `mlhpc validate FILE` for the same report; nothing was synthesized.", file=sys.stderr)
        return 1
    for issue in warnings:
        print(issue.render(chosen), file=sys.stderr)
    try:
        build_app(config).app.synth()
    except MlhpcError as err:  # e.g. the Lambda packages `make setup` builds are missing
        print(f"error: {err.message}", file=sys.stderr)
        for label, text in (("fix", err.fix), ("next", err.next_command)):
            if text:
                print(f"  {label}: {text}", file=sys.stderr)
        print("Nothing was synthesized.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
