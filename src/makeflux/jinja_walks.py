"""Faster walks over Jinja's syntax trees, with exactly Jinja's results.

Compiling one template walks its tree several times: Jinja's code generator looks for
`extends`, blocks and imported names, and collects the filters and tests used, each in a walk of
its own, through Node.iter_child_nodes (a generator over another generator, per node) and
Node.find_all (generators nested as deep as the tree). On a cold render that is about 5% of the
CPU. The versions here read the same fields and yield the same nodes in the same order (tests
compare them, and the code Jinja generates with and without them, on every template makeflux
ships); iter_child_nodes with `exclude` or `only` is left to Jinja.

install() puts them on jinja2.nodes.Node, only when Node's methods are the ones these replace.
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from typing import Any

from jinja2 import nodes

Node = nodes.Node
JINJA_ITER_CHILD_NODES = Node.iter_child_nodes
JINJA_FIND_ALL = Node.find_all


def child_nodes(node: Node) -> list[Node]:
    """The direct child nodes of `node`, in Jinja's order (fields in order, lists in order)."""
    children: list[Node] = []
    for name in node.fields:
        try:
            item = getattr(node, name)
        except AttributeError:  # a field a transformer removed
            continue
        if isinstance(item, list):
            children += [n for n in item if isinstance(n, Node)]
        elif isinstance(item, Node):
            children.append(item)
    return children


def iter_child_nodes(
    self: Node, exclude: Container[str] | None = None, only: Container[str] | None = None
) -> Iterator[Node]:
    if exclude is None and only is None:
        return iter(child_nodes(self))
    return JINJA_ITER_CHILD_NODES(self, exclude, only)


def find_all(self: Node, node_type: Any) -> Iterator[Any]:
    """Every node below `self` that is a `node_type`, depth first, parents before children."""
    stack = child_nodes(self)[::-1]  # the next node to visit last
    while stack:
        node = stack.pop()
        if isinstance(node, node_type):
            yield node
        stack += reversed(child_nodes(node))  # read after the yield, as Jinja's recursion does


def _replaceable() -> bool:
    """Whether Node still has the methods (and signatures) these were written against."""
    iter_code = getattr(JINJA_ITER_CHILD_NODES, "__code__", None)
    find_code = getattr(JINJA_FIND_ALL, "__code__", None)
    return (
        iter_code is not None
        and find_code is not None
        and JINJA_ITER_CHILD_NODES.__module__ == nodes.__name__
        and JINJA_FIND_ALL.__module__ == nodes.__name__
        and iter_code.co_varnames[:3] == ("self", "exclude", "only")
        and find_code.co_varnames[:2] == ("self", "node_type")
        and isinstance(getattr(Node, "fields", None), tuple)
    )


def install() -> bool:
    """Use these walks for every Jinja tree in this process; False when Jinja's differ."""
    if Node.iter_child_nodes is iter_child_nodes:
        return True
    if not _replaceable():
        return False
    Node.iter_child_nodes = iter_child_nodes  # type: ignore[method-assign]
    Node.find_all = find_all  # type: ignore[method-assign,assignment]
    return True
