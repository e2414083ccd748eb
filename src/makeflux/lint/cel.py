"""The part of CEL that CRDs' `x-kubernetes-validations` rules use, evaluated as the API server
does.

Flux's and prometheus-operator's rules are boolean expressions over `self`: has(), size(),
comparisons, && || ! and ?:, string methods. Anything outside that subset raises Unsupported and
the caller skips the rule: an expression we cannot read never produces a finding.

    program = compile_rule("has(self.chart) != has(self.chartRef)")
    program.evaluate({"chart": {...}})  → False
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any


class Unsupported(Exception):
    """The expression (or this evaluation of it) is outside the subset; skip the rule."""


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>\d+(?:\.\d+)?u?)
    | (?P<string>[rR]?(?:'{3}[\s\S]*?'{3}|"{3}[\s\S]*?"{3}|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"))
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>&&|\|\||==|!=|<=|>=|[<>!?:.,()\[\]+\-*/%])
    )""",
    re.VERBOSE,
)

_BINARY_PRECEDENCE = {
    "||": 1,
    "&&": 2,
    "==": 3,
    "!=": 3,
    "<": 3,
    "<=": 3,
    ">": 3,
    ">=": 3,
    "in": 3,
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 5,
}

Node = tuple[Any, ...]


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise Unsupported(f"cannot read {text[position:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.position = 0

    def peek(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise Unsupported("unexpected end")
        token = self.tokens[self.position]
        if expected is not None and token[1] != expected:
            raise Unsupported(f"expected {expected!r}, found {token[1]!r}")
        self.position += 1
        return token

    def parse(self) -> Node:
        node = self.expression()
        if self.position != len(self.tokens):
            raise Unsupported("trailing input")
        return node

    def expression(self) -> Node:
        condition = self.binary(1)
        if self.peek() == "?":
            self.take("?")
            then = self.expression()
            self.take(":")
            return ("if", condition, then, self.expression())
        return condition

    def binary(self, minimum: int) -> Node:
        left = self.unary()
        while True:
            operator = self.peek()
            precedence = _BINARY_PRECEDENCE.get(operator or "")
            if precedence is None or precedence < minimum:
                return left
            self.take()
            left = ("binary", operator, left, self.binary(precedence + 1))

    def unary(self) -> Node:
        if self.peek() == "!":
            self.take()
            return ("not", self.unary())
        if self.peek() == "-":
            self.take()
            return ("neg", self.unary())
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        while self.peek() in (".", "["):
            if self.take()[1] == "[":
                index = self.expression()
                self.take("]")
                node = ("index", node, index)
                continue
            kind, name = self.take()
            if kind != "name":
                raise Unsupported("field name expected")
            if self.peek() == "(" and name in _MACROS:
                self.take("(")
                variable_kind, variable = self.take()
                if variable_kind != "name":
                    raise Unsupported(f"{name}() needs a variable")
                self.take(",")
                body = self.expression()
                self.take(")")
                node = ("macro", name, node, variable, body)
            elif self.peek() == "(":
                node = ("call", name, [node, *self.arguments()])
            else:
                node = ("field", node, name)
        return node

    def arguments(self) -> list[Node]:
        self.take("(")
        arguments: list[Node] = []
        while self.peek() != ")":
            arguments.append(self.expression())
            self.separator(")")
        self.take(")")
        return arguments

    def separator(self, closing: str) -> None:
        """A ',' between items, or the closing bracket next."""
        if self.peek() == ",":
            self.take()
        elif self.peek() != closing:
            raise Unsupported(f"expected ',' or {closing!r}")

    def primary(self) -> Node:
        kind, text = self.take()
        if kind == "number":
            if "." in text:
                return ("literal", float(text))
            return ("literal", int(text.rstrip("u")))
        if kind == "string":
            return ("literal", _unquote(text))
        if text == "(":
            node = self.expression()
            self.take(")")
            return node
        if text == "[":
            items: list[Node] = []
            while self.peek() != "]":
                items.append(self.expression())
                self.separator("]")
            self.take("]")
            return ("list", items)
        if kind == "name":
            if text in ("true", "false"):
                return ("literal", text == "true")
            if text == "null":
                return ("literal", None)
            if self.peek() == "(":
                if text == "has":
                    self.take("(")
                    target = self.expression()
                    self.take(")")
                    if target[0] != "field":
                        raise Unsupported("has() needs a field selection")
                    return ("has", target[1], target[2])
                return ("call", text, self.arguments())
            if text == "self":
                return ("self",)
            # a macro's variable (the parser does not track scopes: evaluation does)
            return ("variable", text)
        raise Unsupported(f"unsupported token {text!r}")


def _unquote(text: str) -> str:
    raw = text[0] in "rR"
    text = text[1:] if raw else text
    quote = 3 if text[:3] in ('"""', "'''") else 1
    body = text[quote:-quote]
    if "\\" in body and not raw:
        body = re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)
    return body


@dataclass(frozen=True)
class Program:
    """A parsed rule; evaluate() returns its boolean or raises Unsupported."""

    source: str
    tree: Node

    def evaluate(self, value: Any) -> bool:
        try:
            result = _evaluate(self.tree, {"self": value})
        except (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError):
            # a type mix the subset does not model: CEL would report an error, not a verdict
            raise Unsupported("evaluation error") from None
        if not isinstance(result, bool):
            raise Unsupported("the rule does not give a boolean")
        return result


@cache
def compile_rule(source: str) -> Program:
    """Parse once per distinct rule text (rules repeat across kinds and versions)."""
    if "oldSelf" in source:
        raise Unsupported("transition rules need the object's previous state")
    return Program(source, _Parser(source).parse())


_Missing = object()


def _field(target: Any, name: str) -> Any:
    if not isinstance(target, dict):
        raise Unsupported("field of a non-object")
    if name not in target:
        # CEL's "no such key": the API server reports an evaluation error; we stay silent.
        raise Unsupported(f"no such key {name}")
    return target[name]


def _compare(operator: str, left: Any, right: Any) -> bool:
    if operator == "==":
        return _equal(left, right)
    if operator == "!=":
        return not _equal(left, right)
    if operator == "in":
        if isinstance(right, list):
            return any(_equal(left, item) for item in right)
        if isinstance(right, dict):
            return left in right
        raise Unsupported("in needs a list or a map")
    comparable = (isinstance(left, str) and isinstance(right, str)) or (
        _is_number(left) and _is_number(right)
    )
    if not comparable:
        raise Unsupported("ordering of mixed types")
    return {
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[operator]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) != isinstance(right, bool):
        return False
    return bool(left == right)


_METHODS: dict[str, Callable[..., Any]] = {
    "size": lambda v: len(v),
    "startsWith": lambda s, p: s.startswith(p),
    "endsWith": lambda s, p: s.endswith(p),
    "contains": lambda s, p: p in s,
    "matches": lambda s, p: re.search(p, s) is not None,
    "lowerAscii": lambda s: s.lower(),
    "upperAscii": lambda s: s.upper(),
    "trim": lambda s: s.strip(),
    "int": lambda v: int(v),
    "string": lambda v: str(v),
}


# Comprehension macros: target.name(variable, body).
_MACROS = ("all", "exists", "exists_one", "filter", "map")


def _macro(name: str, target: Any, variable: str, body: Node, scope: dict[str, Any]) -> Any:
    if isinstance(target, dict):
        items = list(target)
    elif isinstance(target, list):
        items = target
    else:
        raise Unsupported(f"{name}() on a non-collection")
    results = [_evaluate(body, {**scope, variable: item}) for item in items]
    if name == "map":
        return results
    if not all(isinstance(r, bool) for r in results):
        raise Unsupported(f"{name}() needs a boolean body")
    if name == "all":
        return all(results)
    if name == "exists":
        return any(results)
    if name == "exists_one":
        return results.count(True) == 1
    return [item for item, keep in zip(items, results, strict=True) if keep]


def _evaluate(node: Node, scope: dict[str, Any]) -> Any:
    kind = node[0]
    if kind == "literal":
        return node[1]
    if kind == "self":
        return scope["self"]
    if kind == "variable":
        if node[1] not in scope:
            raise Unsupported(f"unknown name {node[1]}")
        return scope[node[1]]
    if kind == "macro":
        return _macro(node[1], _evaluate(node[2], scope), node[3], node[4], scope)
    if kind == "list":
        return [_evaluate(item, scope) for item in node[1]]
    if kind == "field":
        return _field(_evaluate(node[1], scope), node[2])
    if kind == "index":
        target, index = _evaluate(node[1], scope), _evaluate(node[2], scope)
        try:
            return target[index]
        except (KeyError, IndexError, TypeError):
            raise Unsupported("index out of range") from None
    if kind == "has":
        target = _evaluate(node[1], scope)
        if not isinstance(target, dict):
            raise Unsupported("has() on a non-object")
        return node[2] in target and target[node[2]] is not None
    if kind == "not":
        operand = _evaluate(node[1], scope)
        if not isinstance(operand, bool):
            raise Unsupported("! needs a boolean")
        return not operand
    if kind == "neg":
        operand = _evaluate(node[1], scope)
        if not _is_number(operand):
            raise Unsupported("- needs a number")
        return -operand
    if kind == "if":
        condition = _evaluate(node[1], scope)
        if not isinstance(condition, bool):
            raise Unsupported("?: needs a boolean")
        return _evaluate(node[2] if condition else node[3], scope)
    if kind == "binary":
        return _binary(node[1], node[2], node[3], scope)
    if kind == "call":
        function = _METHODS.get(node[1])
        if function is None:
            raise Unsupported(f"function {node[1]}")
        arguments = [_evaluate(argument, scope) for argument in node[2]]
        try:
            return function(*arguments)
        except (TypeError, ValueError, AttributeError, OverflowError, re.error):
            raise Unsupported(f"{node[1]} on these arguments") from None
    raise Unsupported(kind)


def _binary(operator: str, left_node: Node, right_node: Node, scope: dict[str, Any]) -> Any:
    if operator in ("&&", "||"):
        # CEL's logical operators are commutative about errors: false && error is false.
        short = operator == "||"
        left = _logical(left_node, scope)
        if left is short:
            return short
        right = _logical(right_node, scope)
        if right is short:
            return short
        if left is None or right is None:
            raise Unsupported("operand could not be evaluated")
        return not short
    left, right = _evaluate(left_node, scope), _evaluate(right_node, scope)
    if operator in ("+", "-", "*", "/", "%"):
        if not (_is_number(left) and _is_number(right)) and not (
            operator == "+" and type(left) is type(right) and isinstance(left, str | list)
        ):
            raise Unsupported("arithmetic on these types")
        try:
            if operator == "/":
                return (
                    left // right
                    if isinstance(left, int) and isinstance(right, int)
                    else left / right
                )
            return {"+": left + right, "-": left - right, "*": left * right, "%": left % right}[
                operator
            ]
        except ZeroDivisionError:
            raise Unsupported("division by zero") from None
    return _compare(operator, left, right)


def _logical(node: Node, scope: dict[str, Any]) -> bool | None:
    try:
        result = _evaluate(node, scope)
    except Unsupported:
        return None
    if not isinstance(result, bool):
        raise Unsupported("&& and || need booleans")
    return result


__all__ = ["Program", "Unsupported", "compile_rule"]
