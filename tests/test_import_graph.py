"""No import cycle between apps. Every module under apps/ is read with `ast`, imports at module
level AND inside functions (a function-level import is still a dependency, only a hidden one), and
the app-level graph must have no cycle once the known exceptions below are set aside.

Allowed direction (an app imports only apps to its right in its row, or lower rows):
    demo                   → any app (manage.py seed_demo; no app imports it)
    analyst                → threeds, oob, sms, webhooks, audit, issuers, core
    threeds                → oob, push, otp, devices, webhooks, cards, issuers, audit, core
    oob                    → push, devices, audit, core
    push                   → devices, webhooks, audit, core
    otp                    → sms, webhooks, cards, audit, core
    devices                → cards, issuers, audit, core
    cards                  → issuers, audit, core
    sms, webhooks          → audit, core
    issuers, accounts      → audit, core
    audit                  → core
    core                   → nothing (the ground floor)
"""

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "apps"

# Edges that close a cycle today and are being removed elsewhere; each names who removes it.
# Empty since branch h-oobmap moved the OOB decisions next to the challenge (apps/threeds/oob_decisions.py).
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()


def app_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "apps" else None


def import_edges() -> dict[tuple[str, str], list[str]]:
    edges = defaultdict(list)
    for path in sorted(APPS.rglob("*.py")):
        relative = path.relative_to(APPS)
        if "migrations" in relative.parts or len(relative.parts) < 2:
            continue
        source = relative.parts[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names if node.module == "apps"]
            else:
                continue
            for target in targets:
                app = app_of(target)
                if app and app != source:
                    edges[(source, app)].append(f"apps/{relative}:{node.lineno}")
    return edges


def cycles(edges) -> list[list[str]]:
    graph = defaultdict(set)
    for source, target in edges:
        graph[source].add(target)
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def test_the_reader_sees_function_level_imports():
    # So that the test below cannot pass by reading nothing, nor module level only:
    # ThreedsConfig.ready imports apps.push.signals inside the method.
    edges = import_edges()
    assert edges, "no import between apps found at all"
    assert any(where.startswith("apps/threeds/apps.py:") for where in edges[("threeds", "push")])
    assert cycles({("a", "b"): [], ("b", "a"): []}) == [["a", "b", "a"]]


def test_no_import_cycle_between_apps():
    edges = {edge: where for edge, where in import_edges().items() if edge not in KNOWN_EXCEPTIONS}
    found = cycles(edges)
    detail = [" -> ".join(c) + ": " + "; ".join(w for a, b in zip(c, c[1:]) for w in edges[(a, b)][:2]) for c in found]
    assert found == [], "\n".join(detail)


def test_core_is_the_ground_floor_apart_from_the_known_exceptions():
    edges = import_edges()
    assert {target for (source, target) in edges if source == "core"} <= {t for (s, t) in KNOWN_EXCEPTIONS if s == "core"}


def test_every_known_exception_is_still_real():
    # A removed edge must leave this list too, or the list would hide its return.
    edges = import_edges()
    assert {edge for edge in KNOWN_EXCEPTIONS if edge not in edges} == set()
