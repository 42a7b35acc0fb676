"""Strongly connected components (Tarjan, iterative): the loops in a step graph or a flow graph."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

N = TypeVar("N", bound=Hashable)


def strongly_connected(nodes: Iterable[N], succ: Mapping[N, Iterable[N]]) -> list[list[N]]:
    """Every strongly connected component, each in discovery order. Iterative: no recursion limit."""
    index: dict[N, int] = {}
    low: dict[N, int] = {}
    on_stack: set[N] = set()
    stack: list[N] = []
    out: list[list[N]] = []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work: list[tuple[N, list[N]]] = [(start, list(succ.get(start, ())))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, pending = work[-1]
            if pending:
                nxt = pending.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, list(succ.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[N] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                component.reverse()
                out.append(component)
    return out


def cyclic_components(nodes: Iterable[N], succ: Mapping[N, Iterable[N]]) -> list[list[N]]:
    """The components that hold a cycle: more than one node, or one node with an edge to itself."""
    return [
        comp
        for comp in strongly_connected(nodes, succ)
        if len(comp) > 1 or comp[0] in set(succ.get(comp[0], ()))
    ]
