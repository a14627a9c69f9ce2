"""`mlhpc emulate sagemaker`: the CreateTrainingJob request `mlhpc submit` would send, run here as SageMaker would.

What SageMaker does for a bring-your-own-container training job, and what is done here:

* ``/opt/ml`` laid out for the host ``algo-1``: ``input/config/hyperparameters.json`` (the
  request's values, strings as sent), ``resourceconfig.json``, ``inputdataconfig.json``, each
  channel's S3 prefix copied into ``input/data/<channel>/``, empty ``model/``, ``output/data/``
  and ``checkpoints/``. It is a directory under the workdir, reached through
  ``MLHPC_SAGEMAKER_ROOT`` (the workloads' own hook for a moved ``/opt/ml``), since the emulation
  cannot mount ``/opt/ml``;
* the container runs ENTRYPOINT + ``train`` with the image's ENV, the request's ``Environment``
  and ``TRAINING_JOB_NAME``/``TRAINING_JOB_ARN``. SageMaker itself sets no ``SM_*`` variable for
  such a container (the SageMaker training toolkit, not in these images, derives them), so none
  is set here either;
* ``StoppingCondition.MaxRuntimeInSeconds`` stops it (SIGTERM, then SIGKILL after the grace);
* afterwards ``model/`` is uploaded as ``<S3OutputPath>/<job>/output/model.tar.gz`` and
  ``output/data/`` as ``output.tar.gz``, ``checkpoints/`` synced to ``CheckpointConfig.S3Uri``;
  a non-zero exit makes the job Failed with ``output/failure`` as its FailureReason.

One instance only: a request for several (``InstanceCount`` > 1) is refused as not emulated yet.
"""

from __future__ import annotations

import copy
import io
import json
import sys
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlhpc import invocation
from mlhpc.errors import BackendUnsupported
from mlhpc.spec import Backend, WorkloadSpec
from mlhpc_app.aws import jobs as awsjobs
from mlhpc_app.aws import sagemaker as sagemaker_api
from mlhpc_app.aws.stacks import split_s3
from mlhpc_app.emulate import image, runtime, s3
from mlhpc_app.emulate.assembly import REPO, load_assembly
from mlhpc_app.emulate.batch import DEFAULT_WORKDIR
from mlhpc_app.emulate.template import deployment
from workloads import registry

HOST = "algo-1"
FAILURE_REASON_MAX = 1024  # what DescribeTrainingJob keeps of output/failure


@dataclass
class TrainingEmulation:
    """An emulated training job: the request, the attempt, and what landed in S3."""

    spec: WorkloadSpec
    request: dict[str, Any]
    attempt: runtime.Attempt
    status: str
    failure_reason: str
    model_uri: str
    local_model: Path
    missing: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        """True when the job completed and model.tar.gz holds every output the spec lists."""
        return self.status == "Completed" and not self.missing

    def to_dict(self) -> dict[str, Any]:
        """Return the summary for `--output json`."""
        return {
            "workload": self.spec.name,
            "job_name": self.request["TrainingJobName"],
            "status": self.status if not self.missing else "Failed",
            "failure_reason": self.failure_reason,
            "exit_code": self.attempt.exit_code,
            "log": str(self.attempt.logs[0]),
            "model": self.model_uri,
            "local_model": str(self.local_model),
            "missing_outputs": self.missing,
            "request": self.request,
        }


def _layout_opt_ml(root: Path, request: dict[str, Any], url: str, region: str) -> None:
    config = root / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(
        json.dumps(request.get("HyperParameters") or {}), encoding="utf-8"
    )
    resources = request["ResourceConfig"]
    hosts = [f"algo-{i + 1}" for i in range(int(resources["InstanceCount"]))]
    (config / "resourceconfig.json").write_text(
        json.dumps(
            {
                "current_host": HOST,
                "current_instance_type": resources["InstanceType"],
                "current_group_name": "homogeneousCluster",
                "hosts": hosts,
                "instance_groups": [
                    {"instance_group_name": "homogeneousCluster", "instance_type": resources["InstanceType"],
                     "hosts": hosts}
                ],
                "network_interface_name": "eth0",
            }
        ),
        encoding="utf-8",
    )  # fmt: skip
    channels = {}
    client = s3.client(url, region)
    for channel in request.get("InputDataConfig") or []:
        name = channel["ChannelName"]
        source = channel["DataSource"]["S3DataSource"]
        channels[name] = {
            "TrainingInputMode": request["AlgorithmSpecification"].get("TrainingInputMode", "File"),
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": "None",
        }
        bucket, prefix = split_s3(source["S3Uri"])
        target = root / "input" / "data" / name
        target.mkdir(parents=True, exist_ok=True)
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                local = target / obj["Key"][len(prefix) :].lstrip("/")
                local.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, obj["Key"], str(local))
    (config / "inputdataconfig.json").write_text(json.dumps(channels), encoding="utf-8")
    for sub in ("model", "output/data", "checkpoints"):
        (root / sub).mkdir(parents=True, exist_ok=True)


def _tar(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False)
    return buffer.getvalue()


def _upload(url: str, region: str, uri: str, body: bytes) -> None:
    bucket, key = split_s3(uri)
    s3.client(url, region).put_object(Bucket=bucket, Key=key, Body=body)


def emulate_sagemaker(
    workload: str,
    *,
    sets: Sequence[str] = (),
    demo: bool = False,
    nodes: int | None = None,
    config: Path | None = None,
    workdir: Path = DEFAULT_WORKDIR,
    assembly_dir: Path | None = None,
    edit_request: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> TrainingEmulation:
    """Build the training request `mlhpc submit --backend sagemaker` would send and run it as SageMaker would."""
    spec = registry.get(workload)
    if Backend.SAGEMAKER not in spec.backends:
        remote = sorted(b for b in spec.backends if b != Backend.LOCAL)
        raise BackendUnsupported(
            f"{spec.name} does not support the sagemaker backend (it supports: {', '.join(remote) or 'local only'})",
            fix=f"use --backend {remote[0]}" if remote else f"run it locally: mlhpc run {spec.name}",
        )
    args = invocation.from_pairs(spec, list(sets), base=dict(spec.demo_args) if demo else None)
    assembly = load_assembly(config, workdir=workdir, assembly_dir=assembly_dir)
    workdir = workdir.resolve()
    dep = deployment(assembly)
    token = awsjobs.new_client_token()
    from mlhpc import contract
    from mlhpc.config import load_config, resolve_config_path

    tag = contract.image_tag(load_config(resolve_config_path(config)).hpc)
    sub = sagemaker_api.prepare(
        dep, spec, args, nodes=nodes, token=token, run_id=awsjobs.new_run_id(token), image_tag=tag
    )
    request = edit_request(copy.deepcopy(sub.request)) if edit_request else sub.request
    count = int(request["ResourceConfig"]["InstanceCount"])
    if count > 1:
        raise BackendUnsupported(
            f"the request asks for {count} SageMaker instances; `mlhpc emulate sagemaker` emulates one",
            fix="pass --nodes 1 (the multi-instance layout is not emulated yet)",
        )
    name = str(request["TrainingJobName"])
    job_dir = workdir / name
    opt_ml = job_dir / "opt" / "ml"
    img = image.read(image.dockerfile(REPO, spec.name))
    with s3.server(dep.region, [dep.results_bucket, dep.checkpoints_bucket, dep.datasets_bucket]) as url:
        _layout_opt_ml(opt_ml, request, url, dep.region)
        mapping = {
            "/tmp": job_dir / "tmp",
            **({img.workdir: job_dir / "workdir"} if img.workdir != "/" else {}),
        }
        argv = img.argv([invocation.SAGEMAKER_TRAIN])
        if argv[:1] == ["python"]:
            argv[0] = sys.executable
        env = runtime.base_environment(job_dir / "home")
        env.update(img.env)
        env.update(request.get("Environment") or {})
        env = {k: runtime.rewrite(v, mapping) for k, v in env.items()}
        env.update(runtime.aws_environment(url, dep.region))
        env.update(
            {
                "PYTHONPATH": str(REPO),
                "TMPDIR": str(mapping["/tmp"]),
                "TRAINING_JOB_NAME": name,
                "TRAINING_JOB_ARN": f"arn:aws:sagemaker:{dep.region}:000000000000:training-job/{name}",
                "MLHPC_SAGEMAKER_ROOT": str(opt_ml),  # the emulation's /opt/ml (see the module docstring)
            }
        )
        for path in (*mapping.values(), job_dir / "home"):
            path.mkdir(parents=True, exist_ok=True)
        cwd = mapping.get(img.workdir, job_dir / "workdir")
        cwd.mkdir(parents=True, exist_ok=True)
        start = runtime.NodeStart(index=0, argv=argv, env=env, cwd=cwd, log=job_dir / "log.txt")
        layout = runtime.Layout(
            workdir=workdir, repo=REPO, endpoint=url, region=dep.region, queue_name="", environment_name=""
        )
        limit = (request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
        attempt = runtime.run_attempt(
            [start],
            main=0,
            number=1,
            layout=layout,
            limit_s=float(limit) if limit else None,
            reclaim_after_s=None,
        )
        output = f"{request['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{name}/output/"
        _upload(url, dep.region, output + "model.tar.gz", _tar(opt_ml / "model"))
        _upload(url, dep.region, output + "output.tar.gz", _tar(opt_ml / "output" / "data"))
        ckpt = (request.get("CheckpointConfig") or {}).get("S3Uri")
        if ckpt:
            for path in sorted((opt_ml / "checkpoints").rglob("*")):
                if path.is_file():
                    rel = path.relative_to(opt_ml / "checkpoints").as_posix()
                    _upload(url, dep.region, f"{ckpt.rstrip('/')}/{rel}", path.read_bytes())
        model = s3.get_bytes(url, dep.region, output + "model.tar.gz")
    local_model = job_dir / "model"
    with tarfile.open(fileobj=io.BytesIO(model), mode="r:gz") as tar:
        names = set(tar.getnames())
        tar.extractall(local_model, filter="data")
    failure = opt_ml / "output" / "failure"
    ok = attempt.exit_code == 0
    reason = "" if ok else (failure.read_text(encoding="utf-8") if failure.is_file() else "AlgorithmError")
    if attempt.timed_out:
        reason = "MaxRuntimeExceeded"
    return TrainingEmulation(
        spec=spec,
        request=request,
        attempt=attempt,
        status="Completed" if ok else ("Stopped" if attempt.timed_out else "Failed"),
        failure_reason=reason[:FAILURE_REASON_MAX],
        model_uri=output + "model.tar.gz",
        local_model=local_model,
        missing=[o for o in spec.outputs if o not in names] if ok else list(spec.outputs),
    )
