"""The actor's node features come from inventory, telemetry and topology; what none has is missing (issue 12, item 5)."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest

from tests.conftest import ec2_node

INVENTORY_FEATURES = {"vm_count", "node_age_days", "sku", "hw_uncorrectable_errors", "hw_correctable_errors",
                      "cpu_util", "mem_util"}


class FakeTelemetry:
    """Series and a topology as a probe source would give them."""

    def __init__(self, series=None, topology=None) -> None:
        self.series, self._topology = series or {}, topology

    def metrics(self, target, *, minutes=15):
        return self.series.get(target, {})

    def logs(self, target, *, minutes=15):
        return []

    def health(self, target):
        return None

    def topology(self):
        if self._topology is None:
            raise ConnectionError("no topology source")
        return self._topology


def _cloud(endpoint):
    from services.connectors.cloud import Boto3Cloud

    return Boto3Cloud(endpoint_url=endpoint, region="us-east-1", simulator=True)


def test_a_node_gets_its_features_from_ec2_telemetry_and_topology(platform_env):
    from services.mitigation.service import node_features

    endpoint = platform_env["AIOPS_CLOUD_ENDPOINT"]
    ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    node = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="c6g.large",
                             TagSpecifications=[{"ResourceType": "instance",
                                                 "Tags": [{"Key": "Name", "Value": "web-node-7"}]}]
                             )["Instances"][0]["InstanceId"]
    now = datetime.now(UTC).timestamp()
    telemetry = FakeTelemetry(
        series={"web-node-7": {"node_cpu_utilization": [(now - 60, 0.2), (now, 0.42)],
                               "ec2_cpu_utilization": [(now, 99.0)],  # a later source in the list: not used
                               "node_memory_utilization": [(now, 0.61)],
                               "node_edac_uncorrectable_errors": [(now - 60, 1.0), (now, 3.0)],
                               "node_edac_correctable_errors": [(now, 17.0)],
                               "heartbeat": [(now - 60, 1.0), (now, 0.0)]}},
        topology={"placement": {"search": "web-node-7", "cart": node, "auth": "web-node-9"},
                  "components": {"web-node-7": "node", "web-node-9": "node"}})
    features = node_features("web-node-7", telemetry=telemetry, database_url=platform_env["AIOPS_DATABASE_URL"],
                             cluster="blue", inventory=_cloud(endpoint).inventory)
    assert features["sku"] == "gen6"                       # c6g.large: generation 6
    assert 0.0 <= features["node_age_days"] < 0.1          # launched seconds ago
    assert features["vm_count"] == 2                       # search by name, cart by instance id
    assert features["hw_uncorrectable_errors"] == 3 and features["hw_correctable_errors"] == 17
    assert features["hw_fault_definitive"] is True          # the UE counter grew during the window (1 -> 3)
    assert features["cpu_util"] == pytest.approx(0.42) and features["mem_util"] == pytest.approx(0.61)
    assert features["heartbeat_loss_count"] == 1 and features["cluster"] == "blue"
    assert not [k for k, v in features.items() if v is None]


def test_the_default_moto_instance_and_an_old_launch(platform_env):
    from services.mitigation.service import node_features

    endpoint = platform_env["AIOPS_CLOUD_ENDPOINT"]
    node = ec2_node(endpoint)
    launched = datetime(2024, 1, 1, tzinfo=UTC)
    inventory = {"instance_id": node, "instance_type": "m5.xlarge", "created_at": launched}
    real = _cloud(endpoint).inventory(node)
    assert real["instance_id"] == node and real["instance_type"] and isinstance(real["created_at"], datetime)
    features = node_features(node, telemetry=FakeTelemetry(), database_url=platform_env["AIOPS_DATABASE_URL"],
                             cluster=None, inventory=lambda target: inventory)
    assert features["sku"] == "gen5"
    assert features["hw_fault_definitive"] is False         # no EDAC counters: no definitive evidence
    assert features["node_age_days"] == pytest.approx((datetime.now(UTC) - launched).total_seconds() / 86400, abs=0.01)


def test_what_no_source_has_is_missing_and_named_in_the_recommendation(platform_env):
    from causal.model import MitigationEffectModel
    from causal.synthetic import simulate_events
    from services.config import Settings
    from services.mitigation.registry import model_registry
    from services.mitigation.service import NodeMitigationAdvisor
    from tests.causal.conftest import SMALL

    url = platform_env["AIOPS_DATABASE_URL"]
    registry = model_registry(url)
    model = MitigationEffectModel(SMALL).fit(simulate_events(1500, seed=21).frame)
    version = registry.save(model, metrics={}, data_window={}, refutation=None,
                            extra={"model": model.metadata()})
    registry.promote(version.version, force=True)

    def unreachable(target):
        raise ConnectionError("EC2 API down")

    advisor = NodeMitigationAdvisor(Settings(), telemetry=FakeTelemetry(), inventory=unreachable)
    out = advisor.recommend({"node": "n-unknown", "alert": {"cluster": "c1"}})
    assert out is not None
    assert set(out["missing_features"]) == INVENTORY_FEATURES
    assert {k for k, v in out["features"].items() if v is None} == INVENTORY_FEATURES
    imputed = out["explanation"]["imputed_features"]
    assert set(imputed) == INVENTORY_FEATURES
    assert imputed["vm_count"] == pytest.approx(model.imputation.values["vm_count"])
    assert imputed["sku"] == model.imputation.values["sku"]
    # the episode is recorded with the holes, and the next training reads it back as missing
    advisor.record(features=out["features"], action="reboot", downtime_min=4.0, interrupted=True,
                   capacity_out_hours=0.0, key="inc-1")
    from causal.train import load_source
    from services.mitigation.events import iter_event_rows

    loaded = load_source(iter_event_rows(url))
    assert loaded.n_valid == 1 and not loaded.errors
    assert loaded.frame[sorted(INVENTORY_FEATURES)].isna().all(axis=None)


def test_uncorrectable_errors_from_before_the_window_are_not_definitive(platform_env):
    """A flat UE counter is history (a feature), a growing one is a fault happening now (definitive)."""
    from services.mitigation.service import node_features

    now = datetime.now(UTC).timestamp()
    url = platform_env["AIOPS_DATABASE_URL"]

    def features(values):
        series = {"n1": {"node_edac_uncorrectable_errors": [(now - 60 * (len(values) - i), v)
                                                            for i, v in enumerate(values)]}}
        return node_features("n1", telemetry=FakeTelemetry(series=series), database_url=url, cluster=None)

    flat, grew = features([2.0, 2.0, 2.0]), features([2.0, 2.0, 4.0])
    assert flat["hw_uncorrectable_errors"] == 2 and flat["hw_fault_definitive"] is False
    assert grew["hw_uncorrectable_errors"] == 4 and grew["hw_fault_definitive"] is True
