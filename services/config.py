"""Configuration: one pydantic-settings object read from ``AIOPS_*`` environment variables and ``.env``.

Every setting has a default that works embedded on one machine with no servers, so ``make demo``
needs nothing typed first; distributed mode overrides the URLs (see ``.env.example``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = PROJECT_ROOT / "var"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIOPS_", env_file=".env", extra="ignore")

    # storage
    database_url: str = Field(default=f"sqlite:///{VAR_DIR / 'aiops.db'}")
    checkpoint_url: str | None = Field(
        default=None,
        description="LangGraph checkpoints; default: the database (Postgres) or var/checkpoints.sqlite",
    )
    # task queue: "memory://" means embedded, in-process worker threads, no broker server
    broker_url: str = "memory://"
    result_backend: str = "cache+memory://"
    broker_visibility_timeout: int = Field(default=3600, description="seconds before an unacked task is redelivered")
    broker_key_prefix: str = Field(default="", description="Redis key prefix, so deployments can share one Redis")
    # vector store: a local directory, or a Chroma server when chroma_host is set
    chroma_path: str = str(VAR_DIR / "chroma")
    chroma_host: str | None = None
    chroma_port: int = 8000
    memory_enabled: bool = Field(default=True, description="episodic/semantic memory and the context compressor")
    embedding: str = Field(default="auto", pattern="^(auto|minilm|hashing)$",
                           description="memory embeddings: packaged MiniLM, a lexical hashing fallback, or auto")
    context_budget_tokens: int = Field(default=1200, description="token budget of an incident's compressed context")
    # causal mitigation events, model versions and beat schedule state live in the database
    state_dir: str = Field(default="./var", description="this process's local scratch (never shared between processes)")
    iac_workspaces: list[dict] = Field(default_factory=list, description="JSON list of Terraform workspaces to reconcile")
    iac_reconcile_interval_s: float = 300.0
    # cloud: empty endpoint means the simulator's in-process moto server (demo); set for a real or moto cloud
    cloud_endpoint: str | None = None
    cloud_region: str = "us-east-1"
    cloud_is_simulator: bool = Field(default=False, description="the cloud is moto (simulator, tests): use its dummy "
                                     "credentials; otherwise boto3's default credential chain")
    cloud_actions: str = Field(default="ec2", pattern="^(ec2|aws)$",
                               description="ec2: node actions on EC2/Auto Scaling only; aws: also ECS services, Lambda "
                                           "aliases and SSM runbooks (services/connectors/aws.py)")
    aws_ecs_cluster: str = Field(default="default", description="ECS cluster where a service component is looked up")
    aws_targets: dict[str, dict] = Field(
        default_factory=dict, description='JSON {component: {"kind": "ecs", "cluster", "service"} | {"kind": "lambda", '
                                          '"function", "alias"} | {"kind": "ec2", "instance"}}')
    aws_ssm_runbooks: dict[str, dict] = Field(
        default_factory=dict, description='JSON {action: {"document", "parameters", "targets" | "instance_ids", "risk", '
                                          '"timeout_s"}}; {target} is the component; runs instead of the built-in action')
    aws_scale_step: int = Field(default=1, ge=1, description="tasks added by an ECS scale_out")
    aws_scale_max: int = Field(default=20, ge=1, description="an ECS scale_out never sets more tasks than this")
    aws_replay_window_s: float = Field(default=900.0, description="a keyed AWS action re-run within this is a replay")
    aws_command_timeout_s: float = Field(default=600.0, description="how long an SSM runbook command may run")
    actions_url: str | None = Field(default=None, description="runbook-automation API (POST /mitigate); default: boto3 on EC2")
    telemetry_url: str | None = Field(default=None, description="telemetry API (GET /metrics, /logs, /health)")
    # Prometheus-compatible API; when set it is the telemetry source and telemetry_url is ignored
    prometheus_url: str | None = Field(default=None, description="Prometheus HTTP API base URL (PromQL telemetry)")
    prometheus_timeout_s: float = Field(default=10.0, description="timeout of each Prometheus query")
    prometheus_templates: dict[str, str] = Field(
        default_factory=dict, description='JSON {signal: PromQL} over the defaults; {target}, {target_re}, {window} '
                                          'placeholders; "" switches a default off')
    # CloudWatch (EC2 metrics, CloudWatch Logs) on the cloud_* endpoint/region/credentials; used when no URL above is set
    cloudwatch_telemetry: bool = Field(default=False, description="read telemetry from CloudWatch and CloudWatch Logs")
    cloudwatch_log_group: str = Field(default="/fleet/{target}", description="log group; {target} is the component, "
                                      "a fixed group is filtered for the component's name")
    # what the platform receives itself: change events (POST /api/v1/changes) and OTLP spans (/api/v1/otlp/v1/traces)
    github_webhook_secret: str | None = Field(default=None, description="secret of the GitHub deployment webhook "
                                              "(POST /api/v1/changes/github checks X-Hub-Signature-256 with it)")
    traces_retention_minutes: float = Field(default=120.0, gt=0, description="spans older than this are dropped")
    traces_max_spans_per_service: int = Field(default=5000, ge=10, description="newest spans kept per service")
    stored_signals: bool = Field(default=True, description="diagnosis reads stored change events and spans beside "
                                 "the telemetry source (changes, traces, topology)")
    # optional LLM, OpenAI-compatible
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_s: float = 20.0
    # notifications and approvals
    slack_webhook_url: str | None = None
    slack_signing_secret: str | None = None
    slack_bot_token: str | None = Field(default=None, description="bot token (xoxb-...) for incident threads through "
                                        "the Web API; with slack_channel, one thread per incident")
    slack_channel: str | None = Field(default=None, description="channel id the incident threads are posted in")
    slack_api_url: str = Field(default="https://slack.com/api/", description="Slack Web API base URL")
    slack_approver_ids: list[str] = Field(default_factory=list, description="Slack user ids allowed to approve, reject "
                                          "and acknowledge from Slack; empty: anyone the request comes from")
    pagerduty_routing_key: str | None = Field(default=None, description="PagerDuty Events v2 integration key: "
                                              "escalations and approvals waiting too long page a person")
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"
    page_after_approval_wait_s: float = Field(default=900.0, ge=0, description="page when an approval has waited "
                                              "this long (0: never)")
    webhook_urls: list[str] = Field(default_factory=list)
    webhook_secret: str | None = None
    webhook_timeout_s: float = Field(default=10.0, description="timeout of one webhook/Slack delivery attempt")
    webhook_max_attempts: int = Field(default=12, ge=1, description="attempts on 5xx/408/429/timeouts/connection "
                                      "errors before a delivery is dead-lettered (about 40 min with the defaults)")
    webhook_backoff_s: float = Field(default=2.0, gt=0, description="first retry delay; doubles per attempt, jittered")
    webhook_backoff_max_s: float = Field(default=300.0, gt=0, description="longest delay between two attempts")
    webhook_sweep_interval_s: float = Field(default=15.0, gt=0, description="how often beat re-queues outbox rows "
                                            "whose delivery task was lost")
    notify_routes: list[dict] = Field(default_factory=list, description='JSON list of routes, first match wins: '
                                      '{"matchers": ["service=\\"api\\""], "webhook_urls": [...], "slack": true, '
                                      '"slack_webhook_url": "...", "continue": false}; no match: every destination')
    sns_verify_signatures: bool = Field(default=True, description="refuse SNS messages (notifications and "
                                        "subscription confirmations) whose signature does not verify under SNS's "
                                        "certificate; off only for an emulator that does not sign")
    sns_confirm_hosts: list[str] = Field(default_factory=list, description="hosts (host or host:port) besides "
                                         "sns.<region>.amazonaws.com whose SubscribeURL may be fetched (an SNS emulator)")
    # auth: when required, every API call but the health probes needs "Authorization: Bearer <token>"
    auth_required: bool = False
    metrics_public: bool = Field(default=False, description="/metrics answers without a token when auth is on")
    ingest_concurrency: int = Field(default=8, ge=1, le=64, description="alert posts over 8 KB (and SNS messages) "
                                    "parsed at once per API process in the threadpool; more wait on the event loop "
                                    "instead of contending for the GIL. Smaller posts are parsed on the event loop, and "
                                    "all posts are stored by one writer thread per database that commits every waiting "
                                    "post in one transaction (group commit, services.alerts.group)")
    dispatch_in_api: bool = Field(default=True, description="each API process runs a dispatcher thread that hands "
                                  "new incidents from the database outbox to the queue (beat's redispatch does too)")
    dispatch_poll_s: float = Field(default=1.0, gt=0, le=60, description="how often the API's dispatcher looks for "
                                   "outbox rows other processes left (its own posts wake it at once)")
    dispatch_batch: int = Field(default=200, ge=1, le=5000, description="outbox rows claimed per drain step")
    dispatch_lease_s: float = Field(default=60.0, gt=0, description="SQLite: how long a dispatcher's claim on outbox "
                                    "rows lasts (a dead dispatcher's rows are sent again after it)")
    max_body_bytes: int = Field(default=5 * 1024 * 1024, description="request bodies above this are refused (413) "
                                "while they stream in")
    # agents
    approval_required_risk: str = Field(default="high", description="actions at or above this risk need approval")
    actions_enabled: bool = Field(default=True, description="kill switch for all privileged actions")
    max_actions_per_hour: int = 30
    incident_group_window_s: int = 900
    incident_correlation_window_s: int = Field(default=300, ge=0, description="a new alert whose component is "
                                               "connected in the topology to an open incident opened this recently joins "
                                               "it (one fault, one diagnosis); 0 turns correlation off")
    alert_recurrence_grace_s: int = Field(default=300, ge=0, description="a firing alert re-sent this long after "
                                          "its incident was resolved opens a new incident (a recurrence); sooner, it "
                                          "is a re-send in flight at the resolution (Alertmanager's default "
                                          "group_interval, 5 min) and only counts as a repeat")
    incident_correlation_hops: int = Field(default=1, ge=0, le=3, description="how far apart in the topology "
                                           "(placement service -> node, call edges) two components may be to correlate")
    topology_cache_s: float = Field(default=30.0, ge=0, description="how long the API reuses the fleet's topology "
                                    "for correlation before asking the telemetry source again")
    # api
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str | None = None
    cookie_secure: bool | None = Field(default=None, description="mark the console's cookies Secure; unset: when "
                                       "the request (or X-Forwarded-Proto, or public_url) is https")

    @field_validator("notify_routes")
    @classmethod
    def _routes_parse(cls, routes: list[dict]) -> list[dict]:
        """A route with a typo would silently send pages elsewhere: refuse it at start, naming it."""
        from services.notify.matchers import MatcherError, parse_matchers

        known = {"matchers", "webhook_urls", "slack", "slack_webhook_url", "slack_channel", "pagerduty_routing_key",
                 "continue"}
        for i, route in enumerate(routes):
            unknown = set(route) - known
            if unknown:
                raise ValueError(f"notify_routes[{i}]: unknown keys {sorted(unknown)}; known: {sorted(known)}")
            try:
                parse_matchers(route.get("matchers") or [])
            except MatcherError as exc:
                raise ValueError(f"notify_routes[{i}]: {exc}") from None
            if not isinstance(route.get("webhook_urls", []), list):
                raise ValueError(f"notify_routes[{i}].webhook_urls: expected a list of URLs")
        return routes

    @property
    def embedded(self) -> bool:
        """True when tasks run in-process (no broker server)."""
        return self.broker_url.startswith(("memory://", "sqla+sqlite", "filesystem://"))

    @property
    def resolved_checkpoint_url(self) -> str:
        if self.checkpoint_url:
            return self.checkpoint_url
        if self.database_url.startswith("postgresql"):
            return self.database_url
        db_path = self.database_url.removeprefix("sqlite:///")
        return "sqlite:///" + str(Path(db_path).with_name(Path(db_path).stem + "-checkpoints.sqlite"))


def get_settings() -> Settings:
    """Settings read from the environment now; processes hold theirs in ``services.worker.runtime``."""
    return Settings()
