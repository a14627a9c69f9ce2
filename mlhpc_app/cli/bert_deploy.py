"""``make submit-bert``: render the BERT service manifest and apply it with kubectl (or print it).

``python -m mlhpc_app.cli.bert_deploy --image URI --model-uri s3://bucket/models/bert/ [--dry-run]``
renders the same objects InferenceStack applies (workloads.bert.k8s) and hands them to
``kubectl apply`` through the CLI's eks backend (mlhpc_app.aws.eks.apply), e.g. to roll out a new
image tag without redeploying the stack.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlhpc.errors import BackendUnsupported
from mlhpc_app.aws import eks
from workloads.bert.k8s import ServiceSettings, service_objects


def main(argv: Sequence[str] | None = None) -> int:
    """Render (and unless --dry-run, apply) the service manifest; 0 on success, 1 on a kubectl failure."""
    p = argparse.ArgumentParser(
        prog="python -m mlhpc_app.cli.bert_deploy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--image",
        required=True,
        help="container image, e.g. ACCOUNT.dkr.ecr.REGION.amazonaws.com/mlhpc/bert:0.1.0",
    )
    p.add_argument(
        "--model-uri", required=True, help="s3:// prefix of the model (the InferenceStack role reads only it)"
    )
    p.add_argument("--accelerator", choices=["neuron", "cpu"], default="neuron")
    p.add_argument("--namespace", default="bert")
    p.add_argument("--neuron-cores", type=int, default=1)
    p.add_argument("--replicas-min", type=int, default=1)
    p.add_argument("--replicas-max", type=int, default=4)
    p.add_argument("--context", default=None, help="kubectl context (default: the current one)")
    p.add_argument("--dry-run", action="store_true", help="print the manifest instead of applying it")
    args = p.parse_args(argv)  # fmt: skip
    if not 1 <= args.replicas_min <= args.replicas_max or args.neuron_cores < 1:
        print(
            f"error: replicas {args.replicas_min}..{args.replicas_max} and neuron cores {args.neuron_cores} "
            "need 1 <= replicas-min <= replicas-max and neuron-cores >= 1",
            file=sys.stderr,
        )
        return 2
    settings = ServiceSettings(
        image=args.image, model_uri=args.model_uri, accelerator=args.accelerator, namespace=args.namespace,
        neuron_cores=args.neuron_cores, replicas_min=args.replicas_min, replicas_max=args.replicas_max,
    )  # fmt: skip
    manifest = eks.to_yaml(service_objects(settings))
    if args.dry_run:
        print(manifest, end="")
        return 0
    try:
        print(eks.apply(manifest, context=args.context))
    except BackendUnsupported as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
