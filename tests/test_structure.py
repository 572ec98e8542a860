"""The code's shape, read from the source: backend/ has no import cycle (imports inside functions count too), never
imports bpy, its stage modules stay thin, and an import sits inside a function only to keep something heavy out of
its module's import; the Blender side never imports torch when its modules load."""
import ast
from pathlib import Path

from tests.conftest import REPO

BACKEND = REPO / "backend"


def _modules(root: Path, package: str) -> dict[str, Path]:
    out = {}
    for p in root.rglob("*.py"):
        parts = p.relative_to(root).with_suffix("").parts
        name = ".".join((package, *parts))
        out[name.removesuffix(".__init__")] = p
    return out


def _resolve(node, name: str, path: Path, known) -> set[str]:
    """The modules an import statement in module `name` names (absolute; `from X import m` is X.m when that is a
    module of `known`, else X)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    base = node.module or ""
    if node.level:
        parent = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join(parent + ([node.module] if node.module else []))
    return {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}


def _imports(name: str, path: Path, known: set[str], everywhere: bool = True) -> set[str]:
    """Modules of `known` that module `name` imports (anywhere in it, or only at module level)."""
    tree = ast.parse(path.read_text())
    nodes = ast.walk(tree) if everywhere else tree.body
    out = set()
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out |= _resolve(node, name, path, known)
    return {m for m in out if m in known and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_backend_has_no_import_cycle():
    mods = _modules(BACKEND, "headforge.backend")
    graph = {m: _imports(m, p, set(mods)) for m, p in mods.items()}
    assert sum(len(v) for v in graph.values()) > 300  # the graph really was read
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_backend_never_imports_bpy_and_stages_stay_thin():
    for p in BACKEND.rglob("*.py"):
        tree = ast.parse(p.read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {(n.module or "").split(".")[0] for n in ast.walk(tree)
                  if isinstance(n, ast.ImportFrom) and not n.level}
        assert not names & {"bpy", "mathutils", "bmesh"}, p
    sizes = {p.name: len(p.read_text().splitlines()) for p in (BACKEND / "stages").glob("*.py")}
    assert max(sizes.values()) < 150, sizes


def test_blender_side_does_not_import_torch_when_loading():
    """Every module of addon/, operators/ and ui/ (and the extension's __init__) imported in a fresh Python with
    bpy: torch is not loaded (it costs seconds and may be absent until the backend is installed)."""
    import subprocess
    import sys

    from tests.conftest import has_module

    if not has_module("bpy"):
        import pytest

        pytest.skip("needs the bpy module")
    mods = ["headforge"] + [f"headforge.{folder}.{p.stem}" for folder in ("addon", "operators", "ui")
                            for p in sorted((REPO / folder).glob("*.py")) if p.stem != "__init__"]
    code = ("import sys, importlib, bpy\n"
            "for m in sys.argv[1:]:\n"
            "    importlib.import_module(m)\n"
            "    assert 'torch' not in sys.modules, m\n"
            "print('ok', len(sys.argv) - 1)")
    proc = subprocess.run([sys.executable, "-c", code, *mods], capture_output=True, text=True, timeout=300,
                          cwd=REPO.parent if (REPO.parent / "headforge").exists() else None)
    assert proc.returncode == 0 and proc.stdout.startswith("ok"), proc.stdout[-2000:] + proc.stderr[-2000:]


def _third_party(node, name: str, path: Path, mods: dict) -> tuple[set[str], set[str]]:
    """(backend modules, third-party top-level packages) an import statement names."""
    import sys

    targets = _resolve(node, name, path, mods)
    ours = {t for t in targets if t in mods}
    third = {t.split(".")[0] for t in targets if not t.startswith("headforge.")}
    return ours, third - set(sys.stdlib_module_names) - {"__future__"}


def test_imports_inside_functions_are_lazy_for_a_reason():
    """An import inside a function must keep something heavy out of its module's import: a third-party package that
    the module does not already load through its module-level imports. Everything else goes at the top, where the
    dependency graph can be read. (backend/cli.py keeps its imports inside `main` by its own start-up rule.)"""
    mods = _modules(BACKEND, "headforge.backend")
    trees = {m: ast.parse(p.read_text()) for m, p in mods.items()}
    top = {}
    for m, p in mods.items():
        ours, third = set(), set()
        for node in trees[m].body:
            for n in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
                if isinstance(n, (ast.Import, ast.ImportFrom)):
                    o, t = _third_party(n, m, p, mods)
                    ours |= o
                    third |= t
        top[m] = (ours, third)
    loads: dict[str, set[str]] = {}

    def load(m: str, seen=frozenset()) -> set[str]:
        if m not in loads:
            parents = {".".join(m.split(".")[:i]) for i in range(3, m.count(".") + 1)} & set(mods)
            out = set(top[m][1])
            for dep in (top[m][0] | parents) - seen - {m}:
                out |= load(dep, seen | {m})
            loads[m] = out
        return loads[m]

    needless = []
    for m, p in mods.items():
        if p.name == "cli.py" and p.parent == BACKEND:
            continue
        for fn in ast.walk(trees[m]):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for n in ast.walk(fn):
                if isinstance(n, (ast.Import, ast.ImportFrom)):
                    ours, third = _third_party(n, m, p, mods)
                    adds = third - load(m)
                    for dep in ours:
                        adds |= load(dep) - load(m)
                    if not adds:
                        needless.append(f"{p.relative_to(REPO)}:{n.lineno} {ast.unparse(n)}")
    assert sum(1 for _ in mods) > 100
    assert not needless, ("imports inside functions that load nothing new (move them to the top):\n"
                          + "\n".join(needless))
