"""The incident graph, declared in one place.

observe -> diagnose -> plan -> approve -> execute -> verify -> (plan again | resolve)

Each Celery task advances one agent's part: the graph stops before ``diagnose`` (end of the
observer's task) and before ``plan`` (end of the diagnoser's task); the actor's task runs the rest.
The checkpointer persists the state after every node, so a killed worker resumes where it died.
"""

from __future__ import annotations

from functools import partial

from langgraph.graph import END, START, StateGraph

from agents import actor, diagnoser, observer
from agents.state import IncidentState
from agents.tools import AgentTools

# which stage (Celery queue) runs which nodes; the graph pauses at the first node of each stage
STAGE_FIRST_NODE = {"observe": "observe", "diagnose": "diagnose", "act": "plan"}


def _after_plan(state: IncidentState) -> str:
    return "approve" if state.get("plan") else "resolve"


def _after_approve(state: IncidentState) -> str:
    return "execute" if state.get("approval", {}).get("approved") else "resolve"


def _after_verify(state: IncidentState) -> str:
    return "resolve" if state.get("recovered") else "plan"


def build_graph(tools: AgentTools, *, checkpointer=None):
    graph = StateGraph(IncidentState)
    graph.add_node("observe", partial(observer.observe, tools=tools))
    graph.add_node("diagnose", partial(diagnoser.diagnose, tools=tools))
    graph.add_node("plan", partial(actor.plan, tools=tools))
    graph.add_node("approve", partial(actor.approve, tools=tools))
    graph.add_node("execute", partial(actor.execute, tools=tools))
    graph.add_node("verify", partial(actor.verify, tools=tools))
    graph.add_node("resolve", partial(actor.resolve, tools=tools))
    graph.add_edge(START, "observe")
    graph.add_edge("observe", "diagnose")
    graph.add_edge("diagnose", "plan")
    graph.add_conditional_edges("plan", _after_plan, ["approve", "resolve"])
    graph.add_conditional_edges("approve", _after_approve, ["execute", "resolve"])
    graph.add_edge("execute", "verify")
    graph.add_conditional_edges("verify", _after_verify, ["plan", "resolve"])
    graph.add_edge("resolve", END)
    return graph.compile(checkpointer=checkpointer, interrupt_before=["diagnose", "plan"])
