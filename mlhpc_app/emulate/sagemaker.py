"""`mlhpc emulate sagemaker`: the CreateTrainingJob request `mlhpc submit` would send, run here as SageMaker would.

What SageMaker does for a bring-your-own-container training job, and what is done here:

* one host per instance, ``algo-1`` ... ``algo-N``, each with its own ``/opt/ml``:
  ``input/config/hyperparameters.json`` (the request's values, strings as sent),
  ``resourceconfig.json`` (that host as ``current_host``, every host in ``hosts``),
  ``inputdataconfig.json``, each channel's S3 prefix copied into ``input/data/<channel>/`` (all of
  it for ``FullyReplicated``, every N-th key for ``ShardedByS3Key``), empty ``model/``,
  ``output/data/`` and ``checkpoints/``. It is a directory under the workdir, reached through
  ``MLHPC_SAGEMAKER_ROOT`` (the workloads' own hook for a moved ``/opt/ml``), since the emulation
  cannot mount ``/opt/ml``;
* the hosts reach each other by name: with several, each host's process runs in a mount namespace
  of its own (``unshare``) whose ``/etc/hosts`` names every ``algo-K`` on loopback, as the
  container network resolves them on SageMaker;
* the container runs ENTRYPOINT + ``train`` with the image's ENV, the request's ``Environment``
  and ``TRAINING_JOB_NAME``/``TRAINING_JOB_ARN``. SageMaker itself sets no ``SM_*`` variable for
  such a container (the SageMaker training toolkit, not in these images, derives them), so none
  is set here either; with several hosts ``MASTER_PORT`` is set to a free port (an emulation-only
  variable: the hosts share this machine's ports);
* SageMaker acts as the request's ``RoleArn``: the channels are downloaded, the containers run and
  the artifacts are uploaded with that role's credentials, under moto's IAM enforcement;
* ``StoppingCondition.MaxRuntimeInSeconds`` stops it (SIGTERM, then SIGKILL after the grace); the
  job ends when every host has exited 0, or when the first fails (the others are stopped);
* afterwards every host's ``model/`` goes into one ``<S3OutputPath>/<job>/output/model.tar.gz``
  and ``output/data/`` into ``output.tar.gz`` (SageMaker aggregates them; a file two hosts write
  fails the emulation, since on SageMaker one would silently replace the other), ``checkpoints/``
  synced to ``CheckpointConfig.S3Uri``; a non-zero exit makes the job Failed with the failing
  host's ``output/failure`` as its FailureReason.
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

from botocore.exceptions import ClientError

from mlhpc import invocation
from mlhpc.spec import Backend, WorkloadSpec
from mlhpc_app import backends
from mlhpc_app.aws import jobs as awsjobs
from mlhpc_app.aws import sagemaker as sagemaker_api
from mlhpc_app.aws.stacks import split_s3
from mlhpc_app.emulate import iam, image, runtime, s3
from mlhpc_app.emulate.assembly import REPO, load_assembly
from mlhpc_app.emulate.batch import DEFAULT_WORKDIR
from mlhpc_app.emulate.template import deployment
from workloads import registry
from workloads.common.dist import free_port
from workloads.common.storage import local_target

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
    hosts: list[str] = field(default_factory=lambda: ["algo-1"])
    clashes: list[str] = field(default_factory=list)  # artifact names more than one host wrote
    notes: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        """True when the job completed and model.tar.gz holds every output the spec lists."""
        return self.status == "Completed" and not self.missing and not self.clashes

    def to_dict(self) -> dict[str, Any]:
        """Return the summary for `--output json`."""
        return {
            "workload": self.spec.name,
            "job_name": self.request["TrainingJobName"],
            "status": self.status if not (self.missing or self.clashes) else "Failed",
            "failure_reason": self.failure_reason,
            "exit_code": self.attempt.exit_code,
            "log": str(self.attempt.logs[0]),
            "logs": {host: str(self.attempt.logs[i]) for i, host in enumerate(self.hosts)},
            "hosts": self.hosts,
            "ended_by": self.hosts[self.attempt.ended_by or 0],
            "clashes": self.clashes,
            "notes": self.notes,
            "model": self.model_uri,
            "local_model": str(self.local_model),
            "missing_outputs": self.missing,
            "request": self.request,
        }


def host_names(count: int) -> list[str]:
    """Return SageMaker's host names for a cluster of ``count`` instances."""
    return [f"algo-{i + 1}" for i in range(count)]


def resource_config(instance_type: str, host: str, hosts: list[str]) -> dict[str, Any]:
    """Return resourceconfig.json as one host of the cluster reads it."""
    group = "homogeneousCluster"
    return {
        "current_host": host,
        "current_instance_type": instance_type,
        "current_group_name": group,
        "hosts": hosts,
        "instance_groups": [{"instance_group_name": group, "instance_type": instance_type, "hosts": hosts}],
        "network_interface_name": "eth0",
    }


def _keys(client: Any, bucket: str, prefix: str) -> list[str]:
    return sorted(
        obj["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
        if obj["Key"][len(prefix) :].strip("/")
    )


def _layout_opt_ml(root: Path, request: dict[str, Any], host: str, hosts: list[str], client: Any) -> None:
    config = root / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(
        json.dumps(request.get("HyperParameters") or {}), encoding="utf-8"
    )
    config_json = resource_config(request["ResourceConfig"]["InstanceType"], host, hosts)
    (config / "resourceconfig.json").write_text(json.dumps(config_json), encoding="utf-8")
    channels = {}
    for channel in request.get("InputDataConfig") or []:
        name = channel["ChannelName"]
        source = channel["DataSource"]["S3DataSource"]
        distribution = source.get("S3DataDistributionType", "FullyReplicated")
        channels[name] = {
            "TrainingInputMode": request["AlgorithmSpecification"].get("TrainingInputMode", "File"),
            "S3DistributionType": distribution,
            "RecordWrapperType": "None",
        }
        bucket, prefix = split_s3(source["S3Uri"])
        keys = _keys(client, bucket, prefix)
        if distribution == "ShardedByS3Key":
            keys = keys[hosts.index(host) :: len(hosts)]
        target = root / "input" / "data" / name
        target.mkdir(parents=True, exist_ok=True)
        for key in keys:
            local = local_target(target, key[len(prefix) :].lstrip("/"), key=key)  # keys are data
            local.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, key, str(local))
    (config / "inputdataconfig.json").write_text(json.dumps(channels), encoding="utf-8")
    for sub in ("model", "output/data", "checkpoints"):
        (root / sub).mkdir(parents=True, exist_ok=True)


def _tar(directories: list[Path]) -> tuple[bytes, list[str]]:
    """Return one tar.gz of every host's directory and the names more than one host wrote."""
    buffer, seen, clashes = io.BytesIO(), set[str](), []
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for directory in directories:
            for path in sorted(directory.rglob("*")):
                name = path.relative_to(directory).as_posix()
                if name in seen:
                    if not path.is_dir():
                        clashes.append(name)
                    continue
                seen.add(name)
                tar.add(path, arcname=name, recursive=False)
    return buffer.getvalue(), clashes


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
    edit_role: Callable[[dict[str, iam.Document]], dict[str, iam.Document]] | None = None,
) -> TrainingEmulation:
    """Build the training request `mlhpc submit --backend sagemaker` would send and run it as SageMaker would."""
    spec = registry.get(workload)
    backends.check_supported(spec, Backend.SAGEMAKER)  # the refusal `mlhpc submit` gives
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
    name = str(request["TrainingJobName"])
    hosts = host_names(int(request["ResourceConfig"]["InstanceCount"]))
    job_dir = workdir / name
    job_dir.mkdir(parents=True, exist_ok=True)
    network = runtime.named_hosts(job_dir, hosts) if len(hosts) > 1 else []
    role = (
        iam.role_policies(assembly, str(request["RoleArn"])).edit(edit_role)
        if edit_role
        else (iam.role_policies(assembly, str(request["RoleArn"])))
    )
    notes = [f"SageMaker acted as {role.name} (channels, container, uploads), with IAM enforced (moto)"]
    if role.unenforced:
        notes.append(f"not enforced (conditions moto cannot evaluate): {', '.join(role.unenforced)}")
    img = image.read(image.dockerfile(REPO, spec.name))
    port = free_port() if len(hosts) > 1 else None
    output = f"{request['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{name}/output/"
    roots = [job_dir / host / "opt" / "ml" for host in hosts]
    service_error = ""  # what SageMaker itself failed at, as its FailureReason says it
    attempt = runtime.Attempt(
        number=1, exit_code=None, status_reason="not started", nodes={i: None for i in range(len(hosts))},
        logs={i: job_dir / host / "log.txt" for i, host in enumerate(hosts)},
    )  # fmt: skip
    clashes: list[str] = []
    model = b""
    with s3.server(dep.region, [dep.results_bucket, dep.checkpoints_bucket, dep.datasets_bucket]) as url:
        with iam.identity(url, dep.region, role) as credentials:
            as_role = s3.client(url, dep.region, credentials)
            starts = []
            try:
                for index, (host, opt_ml) in enumerate(zip(hosts, roots, strict=True)):
                    _layout_opt_ml(opt_ml, request, host, hosts, as_role)
                    starts.append(
                        _host_start(
                            index, host, opt_ml=opt_ml, host_dir=job_dir / host, request=request, img=img,
                            network=network, aws=runtime.aws_environment(url, dep.region, credentials), port=port,
                            arn=f"arn:aws:sagemaker:{dep.region}:000000000000:training-job/{name}",
                        )
                    )  # fmt: skip
            except ClientError as err:
                service_error = f"ClientError: Data download failed: {_client_error(err)}"
            if not service_error:
                layout = runtime.Layout(
                    workdir=workdir, repo=REPO, endpoint=url, region=dep.region, queue_name="", environment_name=""
                )  # fmt: skip
                limit = (request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
                attempt = runtime.run_attempt(
                    starts,
                    main=0,
                    number=1,
                    layout=layout,
                    limit_s=float(limit) if limit else None,
                    reclaim_after_s=None,
                    until=runtime.UNTIL_ALL,
                )
                try:
                    clashes = _upload_artifacts(as_role, request, roots, output)
                except ClientError as err:
                    service_error = (
                        f"ClientError: Unable to upload the artifacts to {output}: {_client_error(err)}"
                    )
        if not service_error:
            model = s3.get_bytes(url, dep.region, output + "model.tar.gz")
    local_model = job_dir / "model"
    names: set[str] = set()
    if model:
        with tarfile.open(fileobj=io.BytesIO(model), mode="r:gz") as tar:
            names = set(tar.getnames())
            tar.extractall(local_model, filter="data")
    ok = attempt.exit_code == 0 and not service_error
    failure = roots[attempt.ended_by or 0] / "output" / "failure"
    reason = "" if ok else (failure.read_text(encoding="utf-8") if failure.is_file() else "AlgorithmError")
    if service_error:
        reason = service_error
    elif attempt.timed_out:
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
        hosts=hosts,
        clashes=clashes,
        notes=notes,
    )


def _client_error(err: ClientError) -> str:
    info = err.response.get("Error", {})
    return f"{info.get('Code', 'Error')} ({err.operation_name}): {info.get('Message', '')}".strip()


def _upload_artifacts(client: Any, request: dict[str, Any], roots: list[Path], output: str) -> list[str]:
    """Upload every host's model/ and output/data/ (one tar each) and checkpoints/; return the clashes."""
    model_tar, clashes = _tar([r / "model" for r in roots])
    data_tar, data_clashes = _tar([r / "output" / "data" for r in roots])
    _put(client, output + "model.tar.gz", model_tar)
    _put(client, output + "output.tar.gz", data_tar)
    ckpt = (request.get("CheckpointConfig") or {}).get("S3Uri")
    if ckpt:
        for opt_ml in roots:
            for path in sorted((opt_ml / "checkpoints").rglob("*")):
                if path.is_file():
                    rel = path.relative_to(opt_ml / "checkpoints").as_posix()
                    _put(client, f"{ckpt.rstrip('/')}/{rel}", path.read_bytes())
    return [*clashes, *(f"output/data/{n}" for n in data_clashes)]


def _host_start(
    index: int,
    host: str,
    *,
    opt_ml: Path,
    host_dir: Path,
    request: dict[str, Any],
    img: image.Image,
    network: list[str],
    aws: dict[str, str],
    port: int | None,
    arn: str,
) -> runtime.NodeStart:
    """Return how one host's container starts: ENTRYPOINT + train, its env, its directories."""
    mapping = {
        "/tmp": host_dir / "tmp",
        **({img.workdir: host_dir / "workdir"} if img.workdir != "/" else {}),
    }
    argv = img.argv([invocation.SAGEMAKER_TRAIN])
    if argv[:1] == ["python"]:
        argv[0] = sys.executable
    env = runtime.base_environment(host_dir / "home")
    env.update(img.env)
    env.update(request.get("Environment") or {})
    env = {k: runtime.rewrite(v, mapping) for k, v in env.items()}
    env.update(aws)
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "TMPDIR": str(mapping["/tmp"]),
            "HOSTNAME": host,
            "TRAINING_JOB_NAME": str(request["TrainingJobName"]),
            "TRAINING_JOB_ARN": arn,
            "MLHPC_SAGEMAKER_ROOT": str(opt_ml),  # the emulation's /opt/ml (see the module docstring)
            **({"MASTER_PORT": str(port)} if port is not None else {}),
        }
    )
    for path in (*mapping.values(), host_dir / "home"):
        path.mkdir(parents=True, exist_ok=True)
    cwd = mapping.get(img.workdir, host_dir / "workdir")
    cwd.mkdir(parents=True, exist_ok=True)
    return runtime.NodeStart(index=index, argv=[*network, *argv], env=env, cwd=cwd, log=host_dir / "log.txt")


def _put(client: Any, uri: str, body: bytes) -> None:
    bucket, key = split_s3(uri)
    client.put_object(Bucket=bucket, Key=key, Body=body)
