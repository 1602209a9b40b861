"""Mapping templates: Jinja2 in a sandbox, ``{{ OrderNo }}``, ``{{ supplier.Name or '(unknown)' }}``.

Templates are compiled once, when the config loads (``check_template``), and rendered per record with
``StrictUndefined``: a name the record does not have is an error, never a silent blank. Below the top level the
reads are null-safe, because lookup rows and lines may be missing for a record: ``supplier.Name`` with no supplier,
or ``lines[3]`` of a one-line order, is null and renders empty. Output is plain text (autoescape off: it becomes
Jira text or ADF, not HTML); the sandbox refuses internals (``''.__class__``) at load and at render.

A leaf module (it imports only ``errors``): ``config`` checks templates when it loads, ``mapping`` renders them,
and neither imports the other's package for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, Undefined, UndefinedError, meta, nodes
from jinja2.environment import TemplateExpression
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from ml_connector.errors import ConfigError, MappingError
from ml_connector.reasons import TEMPLATE_ERROR

# Names every template can read besides the record's fields (see mapping.issue.build_context).
BUILTIN_NAMES = ("supplier", "person", "project", "lines", "line", "flow", "key")
CONVERSION_HELP = "see 'Converting old templates' in docs/configuration.md"

# The retired single-brace syntax: {OrderNo}, {supplier.Name|or:text}; {{ and }} were literal braces then.
_OLD_PLACEHOLDER = re.compile(r"(?<![{$])\{\s*[A-Za-z_][\w.\[\]]*\s*(?:\|[^{}]*)?\}(?!\})")
_OLD_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def as_text(value: Any) -> str:
    """How a value prints: null is empty, booleans are lower case, whole floats have no ``.0``, dates are ISO."""
    if type(value) is str:  # the common case, before the type checks
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _on_text(operation: Callable[[str], str]) -> Callable[[Any], str]:
    # Jinja's own upper/lower/trim print null as "None"; these print it as the empty text it renders as.
    return lambda value: operation(as_text(value))


class _FieldEnvironment(SandboxedEnvironment):
    """A sandbox whose dots and brackets read row fields, null-safely, before anything else."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if obj is None:
            return None
        if isinstance(obj, Mapping):
            return obj.get(attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if obj is None:
            return None
        if isinstance(obj, Mapping):
            return obj.get(argument) if isinstance(argument, str | int) else None
        if isinstance(obj, Sequence) and not isinstance(obj, str) and isinstance(argument, int):
            return obj[argument] if -len(obj) <= argument < len(obj) else None
        return super().getitem(obj, argument)


_ENV = _FieldEnvironment(autoescape=False, undefined=StrictUndefined, finalize=as_text, keep_trailing_newline=True)
_ENV.filters.update(
    upper=_on_text(str.upper),
    lower=_on_text(str.lower),
    trim=_on_text(str.strip),
    date=_on_text(lambda text: text[:10]),  # 2025-01-31T10:00:00Z → 2025-01-31
)


def is_template(source: str) -> bool:
    """For a value source: a template (``{{ WorkTypeId }}-{{ PriorityId }}``), not an expression (``supplier.Tier``)."""
    return "{{" in source or "{%" in source


@lru_cache(maxsize=1024)
def _compiled(source: str) -> Template:
    return _ENV.from_string(source)


@lru_cache(maxsize=1024)
def _expression(source: str) -> TemplateExpression:
    return _ENV.compile_expression(source)


class Namespace(dict[str, Any]):
    """One record's template names over Jinja's globals, built once and shared by every template rendered for that
    record: Jinja's own ``render`` copies all of them into a new dict for each template, which is most of its cost."""


def namespace(values: Mapping[str, Any]) -> Namespace:
    """What Jinja's ``render(values)`` would see: its globals, overridden by ``values``."""
    return Namespace({**_ENV.globals, **values})


def _shared(context: Mapping[str, Any]) -> Namespace:
    return context if type(context) is Namespace else namespace(context)


def _context(template: Template, names: Namespace) -> Context:
    # What ``template.new_context(names, shared=True)`` makes, without copying Jinja's globals into a key set.
    return Context(_ENV, names, template.name, template.blocks)


def convert_old(source: str) -> str:
    """The new-syntax spelling of an old single-brace template (what the load error suggests)."""

    def convert(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return f"{{{{ '{token[0]}' }}}}"
        path, *filters = [part.strip() for part in match.group(1).split("|")]
        expression = path
        for name in filters:
            if name.startswith("or:"):
                # Escaped, as Jinja reads a literal: a raw CR or LF in template source would become "\n".
                fallback = name[3:].replace("\\", "\\\\").replace("'", "\\'").replace("\r", "\\r").replace("\n", "\\n")
                expression = f"{expression} or '{fallback}'"
            else:
                expression = f"({expression})|{name}" if " or " in expression else f"{expression}|{name}"
        return f"{{{{ {expression} }}}}"

    return _OLD_TOKEN.sub(convert, source)


def _refuse_internals(tree: nodes.Template, source: str, path: str) -> None:
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else getattr(getattr(node, "arg", None), "value", None)
        if isinstance(name, str) and name.startswith("_"):
            raise ConfigError(
                f"template {source!r} reads the internal attribute {name!r}; templates may read fields only", path=path
            )


def check_template(source: str, *, path: str, fields: Collection[str] | None = None, source_of: bool = False) -> None:
    """Compile a template; ``ConfigError`` naming ``path`` for anything it may not do.

    ``source_of``: a value source, which may also be a bare expression (see ``resolve_value``). ``fields`` are the
    record fields the flow reads; None (the flow reads every field) skips the name check.
    """
    bare = source_of and not is_template(source)
    if _OLD_PLACEHOLDER.search(source):
        raise ConfigError(
            f"template {source!r} uses the old single-brace syntax; write it as {convert_old(source)!r} "
            f"({CONVERSION_HELP})",
            path=path,
        )
    try:
        tree = _ENV.parse(f"{{{{ {source} }}}}" if bare else source)
        if bare:
            _expression(source)
        else:
            _compiled(source)
    except TemplateError as exc:
        raise ConfigError(f"template {source!r} is not valid: {exc.message}", path=path) from None
    _refuse_internals(tree, source, path)
    if fields is None:
        return
    available = [*fields, *BUILTIN_NAMES]
    for name in sorted(meta.find_undeclared_variables(tree)):
        if name not in available:
            raise ConfigError(
                f"unknown field {name!r} in template {source!r} — fields available: {', '.join(available)}",
                path=path,
            )


def render(source: str, context: Mapping[str, Any]) -> str:
    """The template's text for one record; ``MappingError`` when it reads a field the record lacks."""
    if "{" not in source and "\r" not in source:
        return source  # plain text (a fixed label): Jinja would give it back unchanged
    names = _shared(context)
    fast = _fast_template(source)
    if fast is not None:
        try:
            return "".join([part if isinstance(part, str) else as_text(part(names)) for part in fast])
        except _Unsure:
            pass  # Jinja says what happens (the error, or the sandbox's answer)
    template = _compiled(source)
    text: str = _evaluate(source, lambda: _ENV.concat(template.root_render_func(_context(template, names))))
    return text


def resolve_value(source: str, context: Mapping[str, Any]) -> Any:
    """A value source: a bare expression's value (``supplier.Cf_Supplier_Tier``; null when the record lacks the
    field, so the value map's default applies), or a template's text."""
    if is_template(source):
        return render(source, context)
    names = _shared(context)
    fast = _fast_expression(source)
    if fast is not None:
        try:
            return fast(names)
        except _Unsure:
            pass
    return _evaluate(source, lambda: _value(_expression(source), names))


# -- the fast path ---------------------------------------------------------------------------------------------------
# Most mapping templates only print fields: ``PO {{ OrderNo }}: {{ Description or '(none)' }}``, ``{{ line.CodeA }}``.
# Those are read here straight from the namespace, as Jinja would read them, for a fraction of Jinja's cost per
# record. Whatever else a template does (filters, tests, loops, brackets, calls) goes to Jinja, and so does any read
# whose answer Jinja decides itself (a name the record lacks, an attribute of something that is not a mapping).

Getter = Callable[[Mapping[str, Any]], Any]
_CONSTANTS = (str, int, float, bool, type(None))


class _Unsure(Exception):
    """The fast path cannot answer for this record: Jinja does."""


def _name(name: str) -> Getter:
    def read(names: Mapping[str, Any]) -> Any:
        if name in names:
            return names[name]
        raise _Unsure

    return read


def _attribute(owner: Getter, attribute: str) -> Getter:
    def read(names: Mapping[str, Any]) -> Any:
        obj = owner(names)
        if obj is None:
            return None  # null-safe below the top level, as _FieldEnvironment.getattr
        if isinstance(obj, Mapping):
            return obj.get(attribute)
        raise _Unsure

    return read


def _either(left: Getter, right: Getter) -> Getter:
    return lambda names: left(names) or right(names)


def _fast_node(node: nodes.Node) -> Getter | None:
    """A reader for a field, a field's attribute, a constant or ``a or b`` of those; None for anything else."""
    if isinstance(node, nodes.Name) and node.ctx == "load":
        return None if node.name == "self" else _name(node.name)  # Jinja's own "self": the template, not a field
    if isinstance(node, nodes.Getattr) and node.ctx == "load":
        owner = _fast_node(node.node)
        return None if owner is None else _attribute(owner, node.attr)
    if isinstance(node, nodes.Const) and type(node.value) in _CONSTANTS:
        value = node.value
        return lambda names: value
    if isinstance(node, nodes.Or):
        left, right = _fast_node(node.left), _fast_node(node.right)
        return None if left is None or right is None else _either(left, right)
    return None


def _parsed(source: str) -> list[nodes.Node]:
    try:
        return _ENV.parse(source).body
    except TemplateError:
        return []  # no fast path: Jinja raises its own error when the template is used


@lru_cache(maxsize=1024)
def _fast_template(source: str) -> tuple[str | Getter, ...] | None:
    """The template as literal text and readers, when it does nothing else; None sends it to Jinja."""
    body = _parsed(source)
    parts: list[str | Getter] = []
    for statement in body:
        if not isinstance(statement, nodes.Output):
            return None
        for node in statement.nodes:
            part = node.data if isinstance(node, nodes.TemplateData) else _fast_node(node)
            if part is None:
                return None
            parts.append(part)
    return tuple(parts) if body else None


@lru_cache(maxsize=1024)
def _fast_expression(source: str) -> Getter | None:
    """A bare expression's reader, when it is one the fast path knows; None sends it to Jinja."""
    body = _parsed(f"{{{{ {source} }}}}")
    if len(body) != 1 or not isinstance(body[0], nodes.Output) or len(body[0].nodes) != 1:
        return None
    return _fast_node(body[0].nodes[0])


def _value(expression: TemplateExpression, names: Namespace) -> Any:
    """``expression(**names)`` without Jinja's two copies of the names (its template is a private attribute: should
    a Jinja release drop it, the public call does the same work, slower)."""
    template: Template | None = getattr(expression, "_template", None)
    if template is None:
        return expression(**names)
    context = _context(template, names)
    for _ in template.root_render_func(context):
        pass
    value = context.vars["result"]
    return None if isinstance(value, Undefined) else value


def _evaluate(source: str, evaluate: Callable[[], Any]) -> Any:
    try:
        return evaluate()
    except UndefinedError as exc:
        raise MappingError(
            f"template {source!r} cannot render: {exc.message}", reason=TEMPLATE_ERROR, value=source
        ) from None
    except SecurityError as exc:
        raise MappingError(f"template {source!r} was refused: {exc}", reason=TEMPLATE_ERROR, value=source) from None
