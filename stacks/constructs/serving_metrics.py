"""Metrics of the BERT service: Amazon Managed Service for Prometheus, its managed scraper, neuron-monitor, KEDA.

Why AMP and not a Prometheus in the cluster: the AWS-managed collector (``AWS::APS::Scraper``)
scrapes the pods from outside the cluster, so there is no Prometheus server to size, store and
keep alive on the system nodes, and the series outlive the cluster (a Grafana pointed at the
workspace keeps the history of a torn-down cluster). All of it is CloudFormation and plain
Kubernetes objects, checked offline.

Why KEDA and not an HPA on external metrics through prometheus-adapter: KEDA's Prometheus scaler
queries AMP itself, signing with SigV4 from its operator's Pod Identity role; prometheus-adapter
cannot sign, so it would need a SigV4 proxy beside it and the adapter's rules would restate every
query. KEDA is a chart reference (``add_helm_chart``) that the cluster's kubectl handler installs
at deploy time; nothing is downloaded at synthesis or in tests.

What the collector scrapes (relabelled to the labels :data:`workloads.bert.k8s.SERIES_LABELS`
names, which the autoscaler's and the dashboard's queries select by):

* ``bert``: the BERT pods that carry the ``prometheus.io/scrape`` annotations
  (:func:`workloads.bert.k8s.scrape_annotations`), on the port and path they name;
* ``neuron-monitor``: the neuron-monitor DaemonSet on the Neuron nodes (NeuronCore utilisation,
  device memory, execution errors and latency), from ``neuron-monitor-prometheus.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from aws_cdk import Duration, Fn, Stack
from aws_cdk import aws_aps as aps
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from stacks.constructs.pod_identity import associate, pod_role
from stacks.constructs.topic_target import allow_alarms_to_publish, topic_arn_of
from workloads.bert.k8s import NEURON_TAINT_KEY, SERIES_LABELS

# neuron-monitor with its Prometheus exporter, from AWS's Neuron container gallery (pinned).
NEURON_MONITOR_IMAGE = "public.ecr.aws/neuron/neuron-monitor:1.3.0"
NEURON_MONITOR_PORT = 8000
NEURON_MONITOR = "neuron-monitor"
# KEDA from its project's chart repository; 2.18 supports the cluster's Kubernetes 1.35 line.
KEDA_CHART, KEDA_REPOSITORY, KEDA_VERSION = "keda", "https://kedacore.github.io/charts", "2.18.0"
KEDA_NAMESPACE = "keda"
KEDA_OPERATOR = "keda-operator"  # the chart's operator service account: the one that queries AMP
# The managed collector reaches the cluster's API as this Kubernetes user (AMP's documented name).
COLLECTOR_USER = "aps-collector-user"
SCRAPE_INTERVAL_S = 15  # KEDA polls every 15 s; a slower scrape would make it act on stale queues


def scrape_configuration(service_namespace: str, monitor_namespace: str) -> dict[str, Any]:
    """Return the collector's Prometheus scrape configuration (kubernetes_sd, pod role)."""
    labels = [
        {"source_labels": [meta], "target_label": name, "action": "replace"}
        for name, meta in SERIES_LABELS.items()
    ]
    annotation = "__meta_kubernetes_pod_annotation_prometheus_io_"
    bert = {
        "job_name": "bert",
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [service_namespace]}}],
        "relabel_configs": [
            {"source_labels": [f"{annotation}scrape"], "regex": "true", "action": "keep"},
            {"source_labels": [f"{annotation}path"], "regex": "(.+)", "target_label": "__metrics_path__"},
            {
                "source_labels": ["__meta_kubernetes_pod_ip", f"{annotation}port"],
                "regex": "(.+);(\\d+)",
                "replacement": "$1:$2",
                "target_label": "__address__",
            },
            *labels,
        ],
    }
    monitor = {
        "job_name": NEURON_MONITOR,
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [monitor_namespace]}}],
        "relabel_configs": [
            {
                "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
                "regex": NEURON_MONITOR,
                "action": "keep",
            },
            {
                "source_labels": ["__meta_kubernetes_pod_ip"],
                "replacement": f"$1:{NEURON_MONITOR_PORT}",
                "target_label": "__address__",
            },
            *labels,
        ],
    }
    return {
        "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s", "scrape_timeout": "10s"},
        "scrape_configs": [bert, monitor],
    }


def collector_rbac() -> list[dict[str, Any]]:
    """Return the ClusterRole and binding AMP's collector needs to discover and scrape pods (read-only)."""
    name = "aps-collector-role"
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "mlhpc"}},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": [
                        "nodes",
                        "nodes/proxy",
                        "nodes/metrics",
                        "services",
                        "endpoints",
                        "pods",
                        "configmaps",
                    ],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["get", "list", "watch"],
                },
                {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "mlhpc"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "User", "name": COLLECTOR_USER, "apiGroup": "rbac.authorization.k8s.io"}],
        },
    ]


def neuron_monitor(namespace: str, node_selector: Mapping[str, str]) -> dict[str, Any]:
    """Return the neuron-monitor DaemonSet: NeuronCore metrics of every Neuron node, as Prometheus text.

    Privileged, as AWS's own DaemonSet for it is: neuron-monitor reads the Neuron devices of the
    node (/dev/neuron*), which the device plugin hands only to pods that request them. It runs in
    kube-system (beside the device plugin), not in the service's restricted namespace.
    """
    labels = {"app.kubernetes.io/name": NEURON_MONITOR, "app.kubernetes.io/part-of": "mlhpc"}
    container = {
        "name": NEURON_MONITOR,
        "image": NEURON_MONITOR_IMAGE,
        "command": ["/bin/sh", "-c"],
        "args": [f"neuron-monitor | neuron-monitor-prometheus.py --port {NEURON_MONITOR_PORT}"],
        "ports": [{"name": "metrics", "containerPort": NEURON_MONITOR_PORT}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {"privileged": True},
        "volumeMounts": [{"name": "dev", "mountPath": "/dev"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": NEURON_MONITOR, "namespace": namespace, "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": NEURON_MONITOR}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": dict(node_selector),
                    "tolerations": [{"key": NEURON_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [container],
                    "volumes": [{"name": "dev", "hostPath": {"path": "/dev"}}],
                },
            },
        },
    }


class ServingMetrics(Construct):
    """The workspace, its collector (with its cluster access), neuron-monitor, KEDA, and the serving alarms."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.Cluster,
        cluster_name: str,
        subnets: Sequence[ec2.ISubnet],
        key: kms.IKey,
        service_namespace: str,
        neuron_selector: Mapping[str, str],
        system_selector: Mapping[str, str],
        alarm_email: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.workspace = aps.CfnWorkspace(
            self, "Workspace", alias=f"{cluster_name}-metrics", kms_key_arn=key.key_arn
        )
        # AMP encrypts the workspace with the key through its service; grants follow AMP's key-policy guide.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowManagedPrometheus",
                principals=[iam.AccountRootPrincipal()],
                actions=["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey",
                         "kms:CreateGrant"],
                resources=["*"],  # in a key policy "*" means this key only
                conditions={"StringEquals": {"kms:ViaService": f"aps.{stack.region}.amazonaws.com"}},
            )
        )  # fmt: skip
        # The query endpoint ends in "/": KEDA appends api/v1/query.
        self.query_url = self.workspace.attr_prometheus_endpoint
        self.scraper = aps.CfnScraper(
            self,
            "Scraper",
            alias=f"{cluster_name}-collector",
            source=aps.CfnScraper.SourceProperty(
                eks_configuration=aps.CfnScraper.EksConfigurationProperty(
                    cluster_arn=cluster.cluster_arn,
                    subnet_ids=[s.subnet_id for s in subnets],
                    # the cluster security group: its members (nodes, control-plane ENIs) accept each other
                    security_group_ids=[cluster.cluster_security_group_id],
                )
            ),
            destination=aps.CfnScraper.DestinationProperty(
                amp_configuration=aps.CfnScraper.AmpConfigurationProperty(
                    workspace_arn=self.workspace.attr_arn
                )
            ),
            scrape_configuration=aps.CfnScraper.ScrapeConfigurationProperty(
                configuration_blob=Fn.base64(
                    yaml.safe_dump(scrape_configuration(service_namespace, "kube-system"), sort_keys=False)
                )
            ),
        )
        rbac = cluster.add_manifest("CollectorRbac", *collector_rbac())
        access = eks.CfnAccessEntry(
            self, "CollectorAccess", cluster_name=cluster.cluster_name, principal_arn=self.scraper.attr_role_arn,
            username=COLLECTOR_USER, type="STANDARD",
        )  # fmt: skip
        access.node.add_dependency(rbac)
        self.neuron_monitor = cluster.add_manifest(
            "NeuronMonitor", neuron_monitor("kube-system", neuron_selector)
        )
        self._add_keda(cluster, system_selector)
        self._add_alarms(cluster_name, key, alarm_email)

    def _add_keda(self, cluster: eks.Cluster, system_selector: Mapping[str, str]) -> None:
        """KEDA (chart reference, on the system nodes) and its operator's role: query this workspace, nothing else."""
        self.keda = cluster.add_helm_chart(
            "Keda", chart=KEDA_CHART, repository=KEDA_REPOSITORY, version=KEDA_VERSION, namespace=KEDA_NAMESPACE, create_namespace=True, wait=True,
            values={"nodeSelector": dict(system_selector),
                    "serviceAccount": {"operator": {"create": True, "name": KEDA_OPERATOR}}},
        )  # fmt: skip
        self.keda_role = pod_role(
            self, "KedaRole", description="KEDA operator (EKS Pod Identity): query the BERT metrics workspace"
        )
        self.keda_role.add_to_policy(
            iam.PolicyStatement(
                sid="QueryServingMetrics",
                actions=["aps:QueryMetrics", "aps:GetSeries", "aps:GetLabels", "aps:GetMetricMetadata"],
                resources=[self.workspace.attr_arn],
            )
        )
        association = associate(
            self, "KedaPodIdentity", cluster=cluster, namespace=KEDA_NAMESPACE, service_account=KEDA_OPERATOR,
            role=self.keda_role,
        )  # fmt: skip
        # The operator reads its credentials when it starts; the association must exist by then.
        self.keda.node.add_dependency(association)

    def _add_alarms(self, cluster_name: str, key: kms.IKey, alarm_email: str | None) -> None:
        """CloudWatch alarms on what EKS vends for free (AWS/EKS): pods that no node can hold."""
        stack = Stack.of(self)
        alerts_name = f"{cluster_name}-serving-alerts"
        self.alerts = sns.Topic(
            self, "Alerts", topic_name=alerts_name, display_name=f"{cluster_name} serving", master_key=key,
            enforce_ssl=True,
        )  # fmt: skip
        if alarm_email:
            self.alerts.add_subscription(subscriptions.EmailSubscription(alarm_email))
        # CloudWatch publishes to the encrypted topic through the key, for this topic's messages only
        allow_alarms_to_publish(topic=self.alerts, key=key, topic_arn=topic_arn_of(stack, alerts_name))
        dims = {"ClusterName": cluster_name}

        def eks_metric(name: str, statistic: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/EKS", metric_name=name, dimensions_map=dims, statistic=statistic,
                period=Duration.minutes(1),
            )  # fmt: skip

        # Pods the scheduler cannot place for 15 minutes: the node autoscaler could not add a node that
        # holds them (Neuron node group at max_size, no inf capacity in the AZs, or the vCPU quota). The
        # scale-up of a Neuron node itself takes a few minutes, so shorter spells are normal.
        self.unschedulable = cloudwatch.Alarm(
            self,
            "PodsUnschedulable",
            alarm_description=f"{cluster_name}: pods have been unschedulable for 15 minutes; check the Neuron node "
            "group's max_size, capacity and quota (kubectl get events -A --field-selector reason=FailedScheduling)",
            metric=eks_metric("scheduler_pending_pods_UNSCHEDULABLE", "Maximum"),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=15,
            datapoints_to_alarm=15,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        # API server 5xx: the autoscalers, KEDA and the collector all depend on it.
        self.api_errors = cloudwatch.Alarm(
            self,
            "ApiServerErrors",
            alarm_description=f"{cluster_name}: the Kubernetes API answered 5xx for 5 minutes; autoscaling and "
            "metrics collection depend on it",
            metric=eks_metric("apiserver_request_total_5XX", "Sum"),
            threshold=10,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=5,
            datapoints_to_alarm=5,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (self.unschedulable, self.api_errors):
            alarm.add_alarm_action(cw_actions.SnsAction(self.alerts))
