"""The incident graph, declared in one place.

observe -> diagnose -> supervise -> (observe wider | plan)
plan -> (check | approve | resolve);  approve -> (execute | check | resolve);  check -> (resolve | approve | plan)
execute -> (verify | resolve);  verify -> (verify later | plan next hypothesis | resolve)

Each Celery task advances one agent's part: the graph pauses before ``observe`` and ``diagnose``
(the observer's and the diagnoser's stages), before ``plan`` (the actor's) and before every
``verify`` (so a re-check is a delayed task, not a sleeping thread). ``STAGE_OF_NODE`` says which
stage (queue) runs the node the graph paused before. The checkpointer persists the state after
every node, so a killed worker resumes where it died.
"""

from __future__ import annotations

from functools import partial

from langgraph.graph import END, START, StateGraph

from agents import actor, diagnoser, observer, supervisor
from agents.state import IncidentState
from agents.tools import AgentTools

# the node the graph paused before -> the stage (Celery queue) that runs it
STAGE_OF_NODE = {"observe": "observe", "diagnose": "diagnose", "plan": "act", "verify": "act"}
PAUSE_BEFORE = list(STAGE_OF_NODE)


def _after_supervise(state: IncidentState) -> str:
    return "observe" if (state.get("schedule") or {}).get("next") == "observe" else "plan"


def _after_plan(state: IncidentState) -> str:
    if state.get("check"):
        return "check"
    return "approve" if state.get("plan") else "resolve"


def _after_approve(state: IncidentState) -> str:
    approval = state.get("approval") or {}
    if approval.get("stale"):
        return "check"
    return "execute" if approval.get("approved") else "resolve"


def _after_check(state: IncidentState) -> str:
    if state.get("recovered"):
        return "resolve"
    return "approve" if state.get("plan") else "plan"


def _after_execute(state: IncidentState) -> str:
    return "resolve" if (state.get("action_result") or {}).get("status") == "blocked" else "verify"


def _after_verify(state: IncidentState) -> str:
    if state.get("recovered"):
        return "resolve"
    return "verify" if actor.verification_pending(state) else "plan"


def build_graph(tools: AgentTools, *, checkpointer=None):
    graph = StateGraph(IncidentState)
    graph.add_node("observe", partial(observer.observe, tools=tools))
    graph.add_node("diagnose", partial(diagnoser.diagnose, tools=tools))
    graph.add_node("supervise", partial(supervisor.supervise, tools=tools))
    graph.add_node("plan", partial(actor.plan, tools=tools))
    graph.add_node("approve", partial(actor.approve, tools=tools))
    graph.add_node("check", partial(actor.check, tools=tools))
    graph.add_node("execute", partial(actor.execute, tools=tools))
    graph.add_node("verify", partial(actor.verify, tools=tools))
    graph.add_node("resolve", partial(actor.resolve, tools=tools))
    graph.add_edge(START, "observe")
    graph.add_edge("observe", "diagnose")
    graph.add_edge("diagnose", "supervise")
    graph.add_conditional_edges("supervise", _after_supervise, ["observe", "plan"])
    graph.add_conditional_edges("plan", _after_plan, ["check", "approve", "resolve"])
    graph.add_conditional_edges("approve", _after_approve, ["execute", "check", "resolve"])
    graph.add_conditional_edges("check", _after_check, ["resolve", "approve", "plan"])
    graph.add_conditional_edges("execute", _after_execute, ["verify", "resolve"])
    graph.add_conditional_edges("verify", _after_verify, ["resolve", "verify", "plan"])
    graph.add_edge("resolve", END)
    return graph.compile(checkpointer=checkpointer, interrupt_before=PAUSE_BEFORE)
