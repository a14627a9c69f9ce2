"""The rule registry: every cross-field configuration rule, in the order they run.

A rule takes the whole (already type-checked) :class:`Config` and yields
:class:`ConfigIssue` objects. Errors stop synthesis and ``mlhpc validate`` exits 1;
warnings and infos are printed and do not. Each rule is a plain function with a stable
code, written next to the models it checks in its domain's module (NET in
:mod:`~mlhpc.config.network`, STO in :mod:`~mlhpc.config.storage`, HPC in :mod:`~mlhpc.config.hpc`,
IMG in :mod:`~mlhpc.config.image`, INF in :mod:`~mlhpc.config.inference`, ANA in
:mod:`~mlhpc.config.analytics`, STU in :mod:`~mlhpc.config.studio`); a rule that reads several
sections lives with the domain whose code it carries. Add a rule by writing the function there,
with the next free code of its family, and listing it in :data:`RULES`.

The workload rules (HPC012-HPC017, :func:`mlhpc.config.hpc.workload_placement`) are not listed:
they need every workload spec, which a config load must not import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from mlhpc.config.analytics import analytics_network, ldap_directory
from mlhpc.config.hpc import capacity_conflicts, efa_counts_agree, gpu_instance_types, gpu_zones, vcpu_limits
from mlhpc.config.image import image_recipes
from mlhpc.config.inference import inference_rules
from mlhpc.config.issues import ConfigIssue, Level
from mlhpc.config.model import Config
from mlhpc.config.network import egress_warnings, nat_within_azs, subnets_fit, zones_match_count
from mlhpc.config.storage import fsx_capacity
from mlhpc.config.studio import studio_network

Rule = Callable[[Config], Iterator[ConfigIssue]]


RULES: tuple[Rule, ...] = (
    nat_within_azs,
    zones_match_count,
    subnets_fit,
    egress_warnings,
    fsx_capacity,
    gpu_instance_types,
    efa_counts_agree,
    gpu_zones,
    capacity_conflicts,
    vcpu_limits,
    image_recipes,
    inference_rules,
    ldap_directory,
    analytics_network,
    studio_network,
)


def check_rules(config: Config) -> list[ConfigIssue]:
    """Run every rule and return all issues, errors first."""
    found = [issue for rule in RULES for issue in rule(config)]
    order = {Level.ERROR: 0, Level.WARNING: 1, Level.INFO: 2}
    return sorted(found, key=lambda i: order[i.level])
