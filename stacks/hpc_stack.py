"""HpcStack: the EFA-enabled GPU cluster on AWS Batch, its queues, job definitions, images and alarms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_batch as batch
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from mlhpc import contract, placement
from mlhpc.config.hpc import CapacityKind, HpcConfig, placement_issue
from mlhpc.config.issues import ConfigError
from mlhpc.contract import pascal
from mlhpc.instances import lookup
from mlhpc.spec import WorkloadSpec
from stacks.constructs.compute import NodeComputeEnvironment, NodeLaunchTemplate
from stacks.constructs.image_build import ImageBuildProject
from stacks.constructs.job_definitions import JobContext, WorkloadJobDefinition
from stacks.constructs.keys import allow_cloudwatch_logs
from stacks.constructs.node_setup import node_user_data
from stacks.constructs.queue_metrics import QueueMetrics
from stacks.constructs.retention import retention
from stacks.constructs.topic_target import (
    TopicTarget,
    allow_alarms_to_publish,
    allow_rule_to_publish,
    topic_arn_of,
)
from stacks.hpc_roles import ClusterRoles
from stacks.refs import NetworkRefs, StorageRefs

# The queues' names here (and in the JobQueue<name> outputs) -> the contract's queue kinds.
QUEUE_KINDS = {kind.construct_name: kind for kind in contract.QueueKind}


def blocked_job_actions(config: HpcConfig) -> list[batch.JobStateTimeLimitAction]:
    """Cancel a job that blocks its queue's head past hpc.blocked_job_timeout_s, for each reason Batch can act on.

    One job that can never start (asks more than any instance has, or more vCPUs than the
    environment's maximum) or that waits for capacity would otherwise hold every job behind it
    for days. These are the reasons the AWS Batch user guide lists as supporting automatic
    remediation ("Automatic remediation with jobStateTimeLimitActions"); the others
    (SERVICE_ROLE_PERMISSIONS, ...) need a person, and `mlhpc submit` ends its follow with the fix.
    """
    reasons = batch.JobStateTimeLimitActionsReason
    return [
        batch.JobStateTimeLimitAction(max_time=Duration.seconds(config.blocked_job_timeout_s), reason=reason)
        for reason in (
            reasons.INSUFFICIENT_INSTANCE_CAPACITY,
            reasons.COMPUTE_ENVIRONMENT_MAX_RESOURCE,
            reasons.JOB_RESOURCE_REQUIREMENT,
        )
    ]


class HpcStack(Stack):
    """GPU (On-Demand, Spot) and CPU compute environments and queues, job definitions from workload specs.

    GPU nodes live in one private subnet (one zone) with a cluster placement group and
    one EFA interface per network card; they mount FSx at /fsx and EFS at /efs.

    Each workload's job definition is sized (:mod:`mlhpc.placement`) for the queue
    :func:`mlhpc.placement.route` sends it to, which is the queue ``mlhpc submit`` uses. A
    workload the cluster has no queue for (a GPU workload on a CPU-only cluster) gets no
    job definition (``skipped``); one that has a queue but could never start there stops
    synthesis with the config rule's message (``mlhpc validate`` reports the same).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: HpcConfig,
        project: str,
        network: NetworkRefs,
        storage: StorageRefs,
        specs: Mapping[str, WorkloadSpec],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        vpc, private_subnets = network.vpc, network.private_subnets
        gpu = config.gpu
        gpu_types = [lookup(t) for t in gpu.instance_types]
        efa_interfaces = (
            max((t.efa_interfaces for t in gpu_types if t), default=0) if gpu.efa and gpu.enabled else 0
        )
        rdma = bool(gpu_types) and all(t is not None and t.gpudirect_rdma for t in gpu_types)

        self.key = kms.Key(
            self, "Key", description="Encrypts mlhpc job logs and notifications", enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )  # fmt: skip
        allow_cloudwatch_logs(self.key, resource="*")
        self.job_logs = logs.LogGroup(
            self, "JobLogs", encryption_key=self.key, retention=retention(config.job_log_retention_days),
            removal_policy=RemovalPolicy.RETAIN,
        )  # fmt: skip

        # --- images -------------------------------------------------------------------
        self.repositories: dict[str, ecr.Repository] = {}
        for name, spec in specs.items():
            repo = ecr.Repository(
                self,
                f"Repository{pascal(name)}",
                repository_name=contract.repository_name(project, spec.image),
                image_scan_on_push=True,
                image_tag_mutability=ecr.TagMutability.IMMUTABLE,
                encryption=ecr.RepositoryEncryption.KMS,
                encryption_key=self.key,
                removal_policy=RemovalPolicy.RETAIN,
                lifecycle_rules=[
                    ecr.LifecycleRule(
                        description="Drop untagged layers",
                        tag_status=ecr.TagStatus.UNTAGGED,
                        max_image_age=Duration.days(7),
                        rule_priority=1,
                    ),
                    ecr.LifecycleRule(
                        description="Keep the last 30 images", max_image_count=30, rule_priority=2
                    ),
                ],
            )
            self.repositories[name] = repo
        # Builds an image in the account, for machines without docker/podman/finch.
        self.image_build = ImageBuildProject(
            self, "ImageBuild", repositories=list(self.repositories.values()), key=self.key,
            image_tag=contract.image_tag(config), log_retention=retention(config.job_log_retention_days),
        )  # fmt: skip

        # --- roles ----------------------------------------------------------------------
        self.roles = ClusterRoles(
            self,
            "Roles",
            storage=storage,
            log_group=self.job_logs,
            repositories=list(self.repositories.values()),
            key=self.key,
        )

        # --- network --------------------------------------------------------------------
        self.node_security_group = ec2.SecurityGroup(
            self, "NodeSecurityGroup", vpc=vpc, allow_all_outbound=False,
            description="Batch nodes: EFA between nodes, HTTPS out",
        )  # fmt: skip
        # EFA's SRD traffic is not TCP/UDP: it needs all traffic to and from the group itself.
        self.node_security_group.add_ingress_rule(
            self.node_security_group, ec2.Port.all_traffic(), "EFA and NCCL between nodes"
        )
        self.node_security_group.add_egress_rule(
            self.node_security_group, ec2.Port.all_traffic(), "EFA and NCCL between nodes"
        )
        self.node_security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS APIs, ECR and package repositories"
        )
        node_groups: list[ec2.ISecurityGroup] = [self.node_security_group, storage.efs_client_security_group]
        if storage.lustre is not None:
            node_groups.append(storage.lustre.client_security_group)

        self.queues: dict[str, batch.JobQueue] = {}
        if gpu.enabled:
            self._gpu_queues(
                config, vpc=vpc, subnets=[private_subnets[i] for i in dict.fromkeys(gpu.zone_indexes)],
                node_groups=node_groups, storage=storage, efa_interfaces=efa_interfaces,
            )  # fmt: skip

        cpu = config.cpu
        cpu_template = NodeLaunchTemplate(
            self, "CpuLaunchTemplate", security_groups=node_groups,
            user_data=node_user_data(
                fsx_dns=storage.lustre.dns_name if storage.lustre else "",
                fsx_mount=storage.lustre.mount_name if storage.lustre else "",
                efs_id=storage.efs.file_system_id if storage.efs else "",
            ),
            root_volume_gib=50,
        )  # fmt: skip
        cpu_environment = NodeComputeEnvironment(
            self, "Cpu", vpc=vpc, subnets=list(private_subnets), instance_types=cpu.instance_types,
            launch_template=cpu_template, security_groups=node_groups, instance_role=self.roles.instance,
            min_vcpus=cpu.min_vcpus, max_vcpus=cpu.max_vcpus, spot=cpu.spot, gpu=False,
        )  # fmt: skip
        cpu_queue = batch.JobQueue(
            self, "CpuQueue", priority=1, job_state_time_limit_actions=blocked_job_actions(config)
        )
        cpu_queue.add_compute_environment(cpu_environment.environment, 1)
        self.queues["Cpu"] = cpu_queue

        # --- job definitions --------------------------------------------------------------
        context = JobContext(
            # Immutable views: the L2 container definitions would otherwise add their own
            # pull/log grants (without sids) on top of the statements ClusterRoles wrote.
            job_role=self.roles.job.without_policy_updates(),
            execution_role=self.roles.execution.without_policy_updates(),
            log_group=self.job_logs,
            results_uri=f"s3://{storage.results.bucket_name}",
            checkpoints_uri=f"s3://{storage.checkpoints.bucket_name}",
            image_tag=contract.image_tag(config),
            fsx=storage.lustre is not None,
            efs=storage.efs is not None,
            efa_devices=efa_interfaces,
            gpudirect_rdma=rdma,
            retry_attempts=config.retry_attempts,
        )
        self.placements, self.skipped = self._place(config, specs)
        self.job_definitions = {
            name: WorkloadJobDefinition(
                self, f"Job{pascal(name)}", spec=specs[name], sizing=sizing,
                repository=self.repositories[name], context=context,
            )
            for name, sizing in self.placements.items()
        }  # fmt: skip

        self._observability(config, vpc)
        self._outputs(efa=efa_interfaces > 0)

    def _place(
        self, config: HpcConfig, specs: Mapping[str, WorkloadSpec]
    ) -> tuple[dict[str, placement.Sizing], dict[str, placement.Refusal]]:
        """Size every workload for its queue; raise ConfigError for one that could never start there."""
        envs = placement.environments(config)
        # placement reads the same config sections as the queues above; they must agree.
        assert set(envs) == {QUEUE_KINDS[name] for name in self.queues}, (set(envs), set(self.queues))
        sized: dict[str, placement.Sizing] = {}
        skipped: dict[str, placement.Refusal] = {}
        errors = []
        for name, spec in specs.items():
            result = placement.place(spec, envs)
            if isinstance(result, placement.Sizing):
                sized[name] = result
            elif result.absent:
                skipped[name] = result
            else:
                errors.append(placement_issue(result))
        if errors:
            raise ConfigError(errors, source="HpcStack (run `mlhpc validate FILE` for the whole report)")
        return sized, skipped

    def _gpu_queues(
        self,
        config: HpcConfig,
        *,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        node_groups: Sequence[ec2.ISecurityGroup],
        storage: StorageRefs,
        efa_interfaces: int,
    ) -> None:
        """Create the GPU launch template, the On-Demand and Spot environments and their queues."""
        gpu = config.gpu
        placement = None
        if gpu.placement_group and not (gpu.capacity and gpu.capacity.kind is CapacityKind.CAPACITY_BLOCK):
            placement = ec2.PlacementGroup(
                self, "PlacementGroup", strategy=ec2.PlacementGroupStrategy.CLUSTER
            )
        user_data = node_user_data(
            fsx_dns=storage.lustre.dns_name if storage.lustre else "",
            fsx_mount=storage.lustre.mount_name if storage.lustre else "",
            efs_id=storage.efs.file_system_id if storage.efs else "",
            hugepages=gpu.hugepages_2mib if efa_interfaces else 0,
        )
        template = NodeLaunchTemplate(
            self, "GpuLaunchTemplate", security_groups=node_groups, user_data=user_data,
            root_volume_gib=gpu.root_volume_gib, efa_interfaces=efa_interfaces, capacity=gpu.capacity,
        )  # fmt: skip
        image = (
            ec2.MachineImage.generic_linux({self.region: gpu.ami.image_id})
            if gpu.ami.image_id
            else ec2.MachineImage.from_ssm_parameter(gpu.ami.ssm_parameter)
        )
        for market, enabled, spot in (("OnDemand", gpu.on_demand, False), ("Spot", gpu.spot, True)):
            if not enabled:
                continue
            environment = NodeComputeEnvironment(
                self, f"Gpu{market}", vpc=vpc, subnets=subnets, instance_types=gpu.instance_types,
                launch_template=template, security_groups=node_groups, instance_role=self.roles.instance,
                min_vcpus=gpu.min_vcpus if not spot else 0, max_vcpus=gpu.max_vcpus, spot=spot, gpu=True,
                placement_group=placement, image=image,
            )  # fmt: skip
            queue = batch.JobQueue(
                self,
                f"Gpu{market}Queue",
                priority=10,
                job_state_time_limit_actions=blocked_job_actions(config),
            )
            queue.add_compute_environment(environment.environment, 1)
            self.queues[f"Gpu{market}"] = queue

    def _observability(self, config: HpcConfig, vpc: ec2.IVpc) -> None:
        # Named, so that the key's grants can name the topic's ARN (see topic_target).
        alerts_name = f"{self.stack_name}-job-alerts"
        self.alerts = sns.Topic(
            self, "JobAlerts", topic_name=alerts_name, display_name="mlhpc job failures", master_key=self.key,
            enforce_ssl=True,
        )  # fmt: skip
        if config.alarm_email:
            self.alerts.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        queue_arns = [q.job_queue_arn for q in self.queues.values()]
        # Named, so that the topic's and the key's grants can name this rule's ARN (see topic_target).
        failed_rule_name = f"{self.stack_name}-job-failed"
        self.failed_rule = events.Rule(
            self,
            "JobFailed",
            rule_name=failed_rule_name,
            description="A job in an mlhpc queue FAILED",
            event_pattern=events.EventPattern(
                source=["aws.batch"],
                detail_type=["Batch Job State Change"],
                detail={"status": ["FAILED"], "jobQueue": queue_arns},
            ),
            targets=[TopicTarget(self.alerts)],
        )
        alerts_arn = topic_arn_of(self, alerts_name)
        allow_rule_to_publish(
            topic=self.alerts,
            key=self.key,
            rule_arn=self.format_arn(service="events", resource="rule", resource_name=failed_rule_name),
            topic_arn=alerts_arn,
        )
        allow_alarms_to_publish(topic=self.alerts, key=self.key, topic_arn=alerts_arn)

        def count(rule: events.Rule, label: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/Events", metric_name="TriggeredRules", dimensions_map={"RuleName": rule.rule_name},
                statistic="Sum", period=Duration.minutes(5), label=label,
            )  # fmt: skip

        failures = count(self.failed_rule, "failed jobs")
        alarm = cloudwatch.Alarm(
            self,
            "ManyJobFailures",
            alarm_description="Five or more mlhpc jobs failed within an hour",
            metric=failures.with_(period=Duration.hours(1)),
            threshold=5,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.alerts))
        gpu_util = cloudwatch.MathExpression(
            expression="SELECT AVG(nvidia_smi_utilization_gpu) FROM CWAgent",
            label="GPU utilization % (CloudWatch agent on the mlhpc AMI)",
            period=Duration.minutes(5),
        )
        self.queue_metrics = QueueMetrics(self, "QueueMetrics", queues=self.queues, vpc=vpc, key=self.key)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{self.stack_name}-jobs")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Queue depth (RUNNABLE jobs)",
                left=[self.queue_metrics.metric(q, "RUNNABLE") for q in self.queues],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Running jobs",
                left=[self.queue_metrics.metric(q, "RUNNING") for q in self.queues],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Failed jobs", left=[failures], width=12),
            cloudwatch.AlarmWidget(title="Job failures alarm", alarm=alarm, width=12),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="GPU utilization", left=[gpu_util], width=12),
            cloudwatch.LogQueryWidget(
                title="Latest job errors",
                log_group_names=[self.job_logs.log_group_name],
                query_lines=[
                    "fields @timestamp, @logStream, @message",
                    "filter @message like /(?i)error|traceback|nccl warn/",
                    "sort @timestamp desc",
                    "limit 50",
                ],
                width=12,
            ),
        )

    def _outputs(self, *, efa: bool) -> None:
        # Every key the CLI reads comes from mlhpc.contract (its test checks each one in the templates).
        outputs: list[tuple[contract.Output[Any], str, str]] = [
            (QUEUE_KINDS[name].output, queue.job_queue_arn, f"{name} job queue")
            for name, queue in self.queues.items()
        ]
        outputs.append(
            (
                contract.GPU_QUEUE_EFA,
                contract.GPU_QUEUE_EFA.encode(efa),
                "Whether the GPU queues' nodes have EFA",
            )
        )
        for name, job in self.job_definitions.items():
            kind = "multi-node parallel" if job.multi_node else "single-node"
            s = job.sizing
            shape = f"{s.nodes} node(s) x {s.gpus} GPU, {s.vcpus} vCPU, {s.memory_mib} MiB"
            outputs.append(
                (
                    contract.job_definition_output(name),
                    job.definition.job_definition_arn,
                    f"{name} ({kind}; {shape}; sized for {s.instance_type} on the {s.queue.value} queue)",
                )
            )
        # every workload's image, with or without a Batch definition here (SageMaker and EKS run it too)
        outputs += [
            (contract.repository_output(name), repository.repository_uri, f"{name} image")
            for name, repository in self.repositories.items()
        ]
        outputs += [
            (contract.JOB_LOG_GROUP, self.job_logs.log_group_name, "CloudWatch log group of every job"),
            (
                contract.SAGEMAKER_ROLE,
                self.roles.sagemaker.role_arn,
                "Execution role of SageMaker training jobs",
            ),
            (contract.JOB_ALERTS_TOPIC, self.alerts.topic_arn, "SNS topic told about failed jobs"),
            (
                contract.IMAGE_BUILD_PROJECT,
                self.image_build.project.project_name,
                "CodeBuild project building workload images (mlhpc image build --in-account)",
            ),
        ]
        for output, value, description in outputs:
            CfnOutput(self, output.key, value=value, description=description)
