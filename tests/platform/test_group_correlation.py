"""Alerts of one fault on connected components join one incident (services/incidents/correlate.py),
on SQLite and PostgreSQL, with the reason on the timeline, and one parent under concurrent posts."""

from __future__ import annotations

import threading
from contextlib import nullcontext
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from services.alerts.models import Alert, NormalizedAlert
from services.alerts.service import store_alerts
from services.incidents.correlate import Correlation, adjacency, find_related
from services.incidents.models import Incident, TimelineEvent
from services.storage.base import session_scope

# the shape every telemetry source answers (agents/protocols.py): call edges, placement, kinds
TOPOLOGY = {
    "edges": [["frontend", "checkout"], ["checkout", "payments"], ["frontend", "search"]],
    "placement": {"frontend": "node-1", "checkout": "node-2", "payments": "node-3", "search": "node-3"},
    "components": {"frontend": "service", "checkout": "service", "payments": "service", "search": "service",
                   "node-1": "node", "node-2": "node", "node-3": "node"},
}


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    from services.storage.migrate import upgrade
    from tests.platform.pgdb import fresh_postgres

    where = (fresh_postgres("aiops_corr") if request.param == "postgres"
             else nullcontext(f"sqlite:///{tmp_path / 'corr.db'}"))
    with where as database_url:
        upgrade(database_url)
        yield database_url


def alert(name: str, *, service: str | None = None, node: str | None = None, cluster: str = "c1",
          group: str | None = None) -> NormalizedAlert:
    return NormalizedAlert(source="test", name=name, service=service, node=node, cluster=cluster,
                           alert_group=group, severity="critical")


def post(url: str, *alerts: NormalizedAlert, correlation: Correlation | None = None):
    with session_scope(url) as session:
        return store_alerts(session, list(alerts), correlation=correlation or Correlation(topology=TOPOLOGY))


def incidents_of(url: str) -> dict[int, list[str]]:
    """incident id -> the names of its alerts."""
    with session_scope(url) as session:
        out: dict[int, list[str]] = {}
        for incident_id, name in session.execute(select(Alert.incident_id, Alert.name).order_by(Alert.id)):
            out.setdefault(incident_id, []).append(name)
        return out


def timeline(url: str, incident_id: int) -> list[TimelineEvent]:
    with session_scope(url) as session:
        return list(session.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == incident_id)
                                    .order_by(TimelineEvent.id)))


def test_a_service_alert_joins_the_incident_of_the_node_it_runs_on(url):
    first = post(url, alert("NodeFilesystemDeviceError", node="node-3"))
    second = post(url, alert("ServiceHighLatency", service="search"))
    assert second.incidents_opened == [] and second.incidents_joined == first.incidents_opened
    assert incidents_of(url) == {first.incidents_opened[0]: ["NodeFilesystemDeviceError", "ServiceHighLatency"]}
    correlated = [e for e in timeline(url, first.incidents_opened[0]) if e.kind == "correlated"]
    assert len(correlated) == 1
    assert correlated[0].data["path"] == ["search runs on node-3"]
    assert "search runs on node-3" in correlated[0].message and "ServiceHighLatency" in correlated[0].message


def test_a_caller_joins_its_callee_and_an_unconnected_service_opens_its_own(url):
    first = post(url, alert("ServiceHighErrorRate", service="payments"))
    joined = post(url, alert("ServiceHighLatency", service="checkout"))
    apart = post(url, alert("ServiceHighLatency", service="search"))  # search is 2 hops from payments (via node-3)
    assert joined.incidents_joined == first.incidents_opened
    assert apart.incidents_opened and apart.incidents_opened != first.incidents_opened
    path = next(e for e in timeline(url, first.incidents_opened[0]) if e.kind == "correlated").data["path"]
    assert path == ["checkout calls payments"]


def test_more_hops_reach_further(url):
    first = post(url, alert("ServiceHighErrorRate", service="payments"))
    second = post(url, alert("ServiceHighLatency", service="search"), correlation=Correlation(topology=TOPOLOGY, hops=2))
    assert second.incidents_joined == first.incidents_opened
    path = next(e for e in timeline(url, first.incidents_opened[0]) if e.kind == "correlated").data["path"]
    assert path == ["search runs on node-3", "payments runs on node-3"]  # from the new alert to the incident


def test_alertmanager_groups_on_the_same_component_join_without_a_topology(url):
    """Two Alertmanager groups (group_by alertname) for one service: same component, one incident."""
    none = Correlation(topology={})
    first = post(url, alert("ServiceHighLatency", service="search", group='{}:{alertname="ServiceHighLatency"}'),
                 correlation=none)
    second = post(url, alert("ServiceHighErrorRate", service="search", group='{}:{alertname="ServiceHighErrorRate"}'),
                  correlation=none)
    assert second.incidents_joined == first.incidents_opened
    event = next(e for e in timeline(url, first.incidents_opened[0]) if e.kind == "correlated")
    assert event.data["path"] == ["same component search"]


def test_one_batch_with_connected_new_groups_opens_one_incident(url):
    result = post(url, alert("NodeDown", node="node-2"), alert("ServiceDown", service="checkout"),
                  alert("ServiceDown", service="search"))
    assert len(result.incidents_opened) == 2  # search (node-3) is not connected to node-2 or checkout
    by_incident = incidents_of(url)
    assert sorted(map(sorted, by_incident.values())) == [["NodeDown", "ServiceDown"], ["ServiceDown"]]
    leader = next(i for i, names in by_incident.items() if "NodeDown" in names)
    kinds = [e.kind for e in timeline(url, leader)]
    assert kinds.count("opened") == 1 and kinds.count("correlated") == 1


def test_no_correlation_across_clusters_after_the_window_or_with_a_closed_incident(url):
    first = post(url, alert("NodeDown", node="node-3"))
    other_cluster = post(url, alert("ServiceDown", service="search", cluster="c2"))
    assert other_cluster.incidents_opened
    with session_scope(url) as session:  # the first incident is older than the correlation window
        incident = session.get(Incident, first.incidents_opened[0])
        incident.opened_at = incident.opened_at - timedelta(seconds=301)
    late = post(url, alert("ServiceHighLatency", service="search"))
    assert late.incidents_opened
    with session_scope(url) as session:
        session.get(Incident, late.incidents_opened[0]).status = "resolved"
    after_close = post(url, alert("ServiceHighErrorRate", service="search"))
    assert after_close.incidents_opened


def test_correlation_off(url):
    first = post(url, alert("NodeDown", node="node-3"))
    second = post(url, alert("ServiceDown", service="search"), correlation=Correlation(window_s=0, topology=TOPOLOGY))
    assert second.incidents_opened and second.incidents_opened != first.incidents_opened


def test_repeats_and_the_group_key_keep_working(url):
    first = post(url, alert("NodeDown", node="node-3"))
    again = post(url, alert("NodeDown", node="node-3"))
    assert again.duplicates and not again.new and not again.incidents_opened
    joined = post(url, alert("ServiceDown", service="search"))
    joined_again = post(url, alert("ServiceHighLatency", service="search"))  # a new alert of the joined group
    assert joined.incidents_joined == joined_again.incidents_joined == first.incidents_opened
    kinds = [e.kind for e in timeline(url, first.incidents_opened[0])]
    assert kinds == ["opened", "correlated", "correlated"]  # every correlation says why


def test_find_related_prefers_the_oldest_incident_at_the_nearest_distance():
    graph = adjacency(TOPOLOGY)
    targets = {"checkout": 7, "node-1": 5, "payments": 9}
    assert find_related(["frontend"], targets, graph=graph, hops=1) == (5, ["frontend runs on node-1"])
    assert find_related(["node-2"], targets, graph=graph, hops=1) == (7, ["checkout runs on node-2"])
    assert find_related(["node-3"], targets, graph=graph, hops=0) is None
    assert find_related(["payments", "node-3"], targets, graph=graph, hops=1) == (9, ["same component payments"])


def test_topology_edges_placing_services_on_nodes_read_as_runs_on():
    """The simulator and the OpenTelemetry service graph put placement in edges too."""
    graph = adjacency({"edges": [["api", "node-9"], ["web", "api"]], "components": {"node-9": "node"}})
    assert graph["node-9"]["api"] == "api runs on node-9" and graph["api"]["web"] == "web calls api"


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_posts_of_one_fault_open_one_parent(url, round_):
    """Alerts of one fault posted at once through separate connections (as two API processes do):
    one incident, every alert in it, one opened event; on PostgreSQL the advisory lock decides.
    Every pair of these alerts is related (node-3, or search which runs on it), so any arrival order
    must end in one incident; five Alertmanager groups, so no two share a group key."""
    alerts = [alert("NodeDown", node="node-3", group="g1"), alert("NodeFilesystemDeviceError", node="node-3", group="g2"),
              alert("ServiceDown", service="search", group="g3"), alert("ServiceHighLatency", service="search", group="g4"),
              alert("NodeMemoryHigh", node="node-3", group="g5")]
    barrier = threading.Barrier(len(alerts))
    errors: list[BaseException] = []

    def one(a: NormalizedAlert) -> None:
        try:
            barrier.wait(timeout=10)
            post(url, a)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(a,)) for a in alerts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    with session_scope(url) as session:
        assert session.scalar(select(func.count(Incident.id))) == 1
        assert session.scalar(select(func.count(Alert.id)).where(Alert.incident_id.is_not(None))) == len(alerts)
        kinds = session.scalars(select(TimelineEvent.kind)).all()
    assert sorted(kinds) == ["correlated"] * (len(alerts) - 1) + ["opened"]


def components_of(url: str) -> set[tuple[str, int]]:
    from services.incidents.models import IncidentComponent

    with session_scope(url) as session:
        return set(session.execute(select(IncidentComponent.component, IncidentComponent.incident_id)).tuples())


def test_the_component_pairs_follow_every_write_of_an_alert(url):
    """Correlation reads ``incident_components``; the triggers keep it whichever path writes the alert:
    the ingest's bulk insert, an ORM insert, an alert moved to another incident, a component changed."""
    first = post(url, alert("A", service="checkout", node="node-2")).incidents_opened[0]
    assert components_of(url) == {("checkout", first), ("node-2", first)}
    post(url, alert("B", service="checkout", node="node-2"), correlation=Correlation(window_s=0))  # same pairs
    second = max(incidents_of(url))
    with session_scope(url) as session:
        session.add(Incident(title="by hand", group_key="by-hand"))
        session.flush()
        third = session.scalar(select(func.max(Incident.id)))
        session.add(Alert(fingerprint="b" * 64, source="test", name="C", severity="high", service="search",
                          node="", incident_id=third))  # an empty component is no component
        moved = session.scalar(select(Alert).where(Alert.name == "A"))
        moved.incident_id, moved.node = third, "node-9"
    pairs = components_of(url)
    assert {("search", third), ("checkout", third), ("node-9", third)} <= pairs
    assert ("", third) not in pairs and ("checkout", second) in pairs
    from services.incidents.models import IncidentComponent

    with session_scope(url) as session:  # a pair written again is not added again
        assert session.scalar(select(func.count(IncidentComponent.id))) == len(pairs)


def test_the_migration_copies_the_pairs_of_existing_alerts(tmp_path):
    from services.storage.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url, revision="0085")
    with session_scope(url) as session:
        session.add(Incident(title="old", group_key="old"))
        session.flush()
        incident = session.scalar(select(func.max(Incident.id)))
        session.add_all([Alert(fingerprint=c * 64, source="test", name=c, severity="high", service=svc, node=node,
                               incident_id=incident)
                         for c, svc, node in (("a", "checkout", "node-2"), ("b", "checkout", None), ("c", None, None))])
        session.add(Alert(fingerprint="d" * 64, source="test", name="d", severity="high", service="lonely"))
    upgrade(url)
    assert components_of(url) == {("checkout", incident), ("node-2", incident)}
