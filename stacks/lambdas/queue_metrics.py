"""Publish job counts per Batch queue and status as CloudWatch metrics (Batch publishes none).

Runs every minute from EventBridge. RUNNABLE is the queue depth; RUNNING the busy nodes'
jobs. Metrics: namespace mlhpc/Batch, metric Jobs, dimensions Queue and Status.
Inlined into the template (no asset), so it stays small and uses only boto3.
"""

import json
import os
from typing import Any

import boto3

STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
NAMESPACE = "mlhpc/Batch"


def count_jobs(batch: Any, queue: str, status: str) -> int:
    """Return how many jobs of a queue are in a status."""
    total = 0
    for page in batch.get_paginator("list_jobs").paginate(jobQueue=queue, jobStatus=status):
        total += len(page["jobSummaryList"])
    return total


def handler(event: Any, context: Any) -> dict[str, dict[str, int]]:
    """Count every queue's jobs by status and publish them; return the counts."""
    queues = json.loads(os.environ["QUEUES"])  # {"Cpu": "arn:...", ...}
    batch = boto3.client("batch")
    cloudwatch = boto3.client("cloudwatch")
    counts: dict[str, dict[str, int]] = {
        name: {s: count_jobs(batch, arn, s) for s in STATUSES} for name, arn in queues.items()
    }
    data = [
        {
            "MetricName": "Jobs",
            "Dimensions": [{"Name": "Queue", "Value": name}, {"Name": "Status", "Value": status}],
            "Value": value,
            "Unit": "Count",
        }
        for name, by_status in counts.items()
        for status, value in by_status.items()
    ]
    for start in range(0, len(data), 20):
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data[start : start + 20])
    return counts
