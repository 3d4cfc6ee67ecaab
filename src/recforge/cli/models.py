"""``recforge models``: the registered models, their capabilities and hyperparameters.

``recforge models`` lists every model of :data:`recforge.models._catalog.MODEL_MODULES` with
its capabilities, its hyperparameters and their defaults (from the class ``__init__``
signature) and the first line of its docstring; ``recforge models NAME`` shows one model with
the Parameters section of its docstring; ``--json`` writes the same as JSON.

Listing never imports torch: a model family whose module imports torch (directly or through
another recforge module) is read from its source file with :mod:`ast` instead of being
imported; the other families are imported. Naming one model imports its family, torch
included when the model needs it. Each entry says which was done (``"read": "import"`` or
``"read": "source"``).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
from functools import lru_cache
from pathlib import Path

_TORCH = ("torch",)


def add_parser(subparsers) -> None:
    """Add ``models``."""
    p = subparsers.add_parser(
        "models", help="list the registered models, their capabilities and hyperparameters",
        description="List every registered model with its capabilities, hyperparameters "
                    "(with defaults) and a one-line summary, or show one model in full. Listing "
                    "reads torch-based families from their source without importing torch; "
                    "naming one model imports its family.")
    p.add_argument("name", nargs="?", help="show this model in full (its Parameters section)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_models)


# ====================================================================== model descriptions
def describe_model(name: str, *, import_family: bool = True) -> dict:
    """What ``recforge models`` shows of one registered model.

    With ``import_family=False`` a family that needs torch is read from its source instead of
    being imported.
    """
    from ..models._catalog import MODEL_MODULES

    module = MODEL_MODULES[name]
    if import_family or not _needs_torch(module):
        from ..models import get_model_class

        cls = get_model_class(name)
        doc = inspect.getdoc(cls) or ""
        params = _signature_params(cls)
        caps = sorted(getattr(cls, "capabilities", ()))
        read = "import"
    else:
        doc, params, caps = _read_from_source(module, name)
        read = "source"
    return {"name": name, "module": module, "capabilities": caps, "params": params,
            "summary": doc.strip().splitlines()[0] if doc.strip() else "",
            "parameters_doc": _parameters_section(doc), "read": read}


def _signature_params(cls) -> list[dict]:
    out = []
    for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        required = p.default is inspect.Parameter.empty
        out.append({"name": p.name, "required": required,
                    "default": None if required else _jsonable(p.default)})
    return out


def _jsonable(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)) and all(
            v is None or isinstance(v, (bool, int, float, str)) for v in value):
        return list(value)
    return repr(value)


def _parameters_section(doc: str) -> str:
    """The numpydoc ``Parameters`` section of ``doc`` (without its heading), or ``""``."""
    lines = doc.splitlines()
    for i in range(len(lines) - 1):
        if lines[i].strip() == "Parameters" and set(lines[i + 1].strip()) == {"-"}:
            body = []
            for j in range(i + 2, len(lines)):
                nxt = lines[j + 1].strip() if j + 1 < len(lines) else ""
                if lines[j].strip() and nxt and set(nxt) == {"-"} and not lines[j].startswith(" "):
                    break  # the next section's heading
                body.append(lines[j])
            return "\n".join(body).strip("\n")
    return ""


# ---------------------------------------------------------------------- static reading
def _source_path(module: str) -> Path | None:
    """The source file of a recforge module, found on disk (nothing is imported)."""
    parts = module.split(".")
    if parts[0] != "recforge":
        return None
    base = Path(__file__).resolve().parents[1].joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@lru_cache(maxsize=None)
def _parsed(module: str) -> ast.Module | None:
    path = _source_path(module)
    if path is None or path.suffix != ".py":
        return None
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    is_pkg = str(_source_path(module) or "").endswith("__init__.py")
    parts = module.split(".")
    base = parts if is_pkg else parts[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _module_imports(module: str) -> list[str]:
    """Modules imported at the top level of ``module`` (the ones that run on import)."""
    tree = _parsed(module)
    out = []
    for node in tree.body if tree else ():
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            src = _absolute(module, node)
            out.append(src)
            # "from . import x" may name a submodule
            out.extend(f"{src}.{a.name}" for a in node.names
                       if _source_path(f"{src}.{a.name}") is not None)
    return out


@lru_cache(maxsize=None)
def _needs_torch(module: str, _seen: frozenset = frozenset()) -> bool:
    """Whether importing ``module`` imports torch (through recforge modules, read statically)."""
    for imp in _module_imports(module):
        if imp.split(".")[0] in _TORCH:
            return True
        if imp.startswith("recforge") and imp != module and imp not in _seen:
            if _parsed(imp) is not None and _needs_torch(imp, _seen | {module}):
                return True
    return False


def _class_node(module: str, name: str) -> ast.ClassDef | None:
    tree = _parsed(module)
    for node in tree.body if tree else ():
        if isinstance(node, ast.ClassDef) and name in (node.name, _registered_name(node)):
            return node
    return None


def _registered_name(node: ast.ClassDef) -> str | None:
    for dec in node.decorator_list:
        if isinstance(dec, ast.Call) and getattr(dec.func, "id", None) == "register" and dec.args:
            arg = dec.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                return arg.value
    return None


def _where_defined(module: str, name: str) -> str | None:
    """The module a name used in ``module`` comes from (itself, or a ``from`` import)."""
    if _class_node(module, name) is not None:
        return module
    tree = _parsed(module)
    for node in tree.body if tree else ():
        if isinstance(node, ast.ImportFrom) and any(
                (a.asname or a.name) == name for a in node.names):
            return _absolute(module, node)
    return None


def _read_from_source(module: str, name: str) -> tuple[str, list[dict], list[str]]:
    node = _class_node(module, name)
    if node is None:  # pragma: no cover - the catalog test keeps names and modules in step
        return "", [], []
    doc = inspect.cleandoc(ast.get_docstring(node) or "")
    params: list[dict] = []
    for item in node.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            params = _ast_params(item.args)
    return doc, params, sorted(_capabilities(module, node.name) or ())


def _ast_params(args: ast.arguments) -> list[dict]:
    out = []
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = (list(zip(positional, defaults, strict=True))[1:]
             + list(zip(args.kwonlyargs, args.kw_defaults, strict=True)))
    for arg, default in pairs:
        if default is None:
            out.append({"name": arg.arg, "required": True, "default": None})
            continue
        try:
            value = _jsonable(ast.literal_eval(default))
        except ValueError:
            value = ast.unparse(default)
        out.append({"name": arg.arg, "required": False, "default": value})
    return out


def _capabilities(module: str, cls_name: str) -> frozenset | None:
    """``capabilities`` of a class read statically, following its bases; an importable base
    (one whose module does not need torch) is imported and asked."""
    node = _class_node(module, cls_name)
    if node is None:
        where = module
        if _needs_torch(where):
            return None
        return frozenset(getattr(getattr(importlib.import_module(where), cls_name), "capabilities",
                                 ()))
    for item in node.body:
        target = getattr(item, "target", None) if isinstance(item, ast.AnnAssign) else (
            item.targets[0] if isinstance(item, ast.Assign) and len(item.targets) == 1 else None)
        if isinstance(target, ast.Name) and target.id == "capabilities":
            from ..models import base
            value = item.value
            names = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)}
            env = {n: getattr(base, n) for n in names if hasattr(base, n)}
            env["frozenset"] = frozenset
            return frozenset(eval(compile(ast.Expression(value), "<capabilities>", "eval"),  # noqa: S307
                                  {"__builtins__": {}}, env))
    for b in node.bases:
        if isinstance(b, ast.Name):
            where = _where_defined(module, b.id)
            if where is None:
                continue
            if where == module or _needs_torch(where):
                caps = _capabilities(where, b.id)
            else:
                caps = frozenset(getattr(getattr(importlib.import_module(where), b.id),
                                         "capabilities", ()))
            if caps is not None and (caps or b is node.bases[-1]):
                return caps
    return frozenset()


# ====================================================================== output
def _cmd_models(args) -> int:
    from ..models._catalog import MODEL_MODULES

    if args.name is not None:
        if args.name not in MODEL_MODULES:
            from .main import UsageError
            raise UsageError(f"unknown model {args.name!r}; known: {', '.join(sorted(MODEL_MODULES))}")
        d = describe_model(args.name)
        print(json.dumps(d, indent=1) if args.json else _full_text(d))
        return 0
    rows = [describe_model(n, import_family=False) for n in sorted(MODEL_MODULES, key=str.lower)]
    if args.json:
        print(json.dumps({"models": rows}, indent=1))
        return 0
    for d in rows:
        print(f"{d['name']}  [{', '.join(d['capabilities'])}]  {d['summary']}")
        print(f"    {_params_text(d['params'])}")
    print("\n(torch-based families are read from source, not imported; "
          "`recforge models NAME` shows one in full)")
    return 0


def _params_text(params: list[dict]) -> str:
    if not params:
        return "no hyperparameters"
    return ", ".join(p["name"] if p["required"] else f"{p['name']}={_default_text(p['default'])}"
                     for p in params)


def _default_text(value) -> str:
    if isinstance(value, list):
        return "(" + ", ".join(map(repr, value)) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def _full_text(d: dict) -> str:
    out = [f"{d['name']}  ({d['module']})", d["summary"], "",
           f"capabilities: {', '.join(d['capabilities']) or 'none'}",
           f"hyperparameters: {_params_text(d['params'])}"]
    if d["parameters_doc"]:
        out += ["", "Parameters", "----------", d["parameters_doc"]]
    return "\n".join(out)
