"""Topic schemas: JSON Schema checks that hostile configuration cannot turn against the server.

A topic's schema runs on the web process's event loop for every event, so it
is treated as hostile until proven otherwise:

1. Its regular expressions (``pattern``, ``patternProperties`` and the
   ``additionalProperties`` that depends on them) run on RE2, which matches in
   time linear in the input and never backtracks; a pattern RE2 cannot run
   (backreferences, lookaround) is refused with the reason.
2. A schema, or data checked against one, is refused past a nesting depth and
   a size that keep jsonschema's recursion well inside Python's stack.
3. Every keyword check is metered: one event's check stops after a number of
   steps linear in its size, so ``$ref``s that multiply the work cannot.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import jsonschema
import orjson
import re2
from jsonschema.exceptions import ValidationError
from referencing.exceptions import Unresolvable

# jsonschema recurses about 8 Python frames per schema level and 4-6 per data level:
# 32 levels stay far below the 1,000-frame limit wherever validation is called from.
MAX_SCHEMA_DEPTH = 32
MAX_DATA_DEPTH = 32  # event data checked against a schema; deeper data never reaches jsonschema
MAX_SCHEMA_BYTES = 64 * 1024  # every event is checked against all of it: a schema, not a database
# Keyword checks one event may cost: $refs can multiply work (16 definitions that
# each allOf the next twice: 2**16 checks, 4.6 s), so a check stops after
# SCHEMA_STEPS + SCHEMA_STEPS_PER_VALUE per JSON value in the data. A realistic
# schema takes about 2 steps per value, at 1-15 us a step.
SCHEMA_STEPS = 2_000
SCHEMA_STEPS_PER_VALUE = 10
_PROBES = (None, {}, [], "", 0)  # the admin tries a schema on these within SCHEMA_STEPS each
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # RE2 would print every refused pattern to stderr


def check_schema(schema: Any) -> None:
    """Raise ValueError if ``schema`` is not a valid JSON Schema that can be applied.

    Refused too: a schema nested deeper than ``MAX_SCHEMA_DEPTH`` or larger than
    ``MAX_SCHEMA_BYTES`` as JSON, a pattern RE2 cannot run, and
    ``unevaluatedProperties`` beside ``patternProperties`` (jsonschema matches
    those with Python's backtracking ``re``).
    """
    if not isinstance(schema, (dict, bool)):
        raise ValueError("not a valid JSON Schema: it must be a JSON object (or true/false)")
    _check_schema_shape(schema)
    try:
        validator = _validator_class(schema)
        validator.check_schema(schema, format_checker=_re2_format_checker(validator))
        for probe in _PROBES:
            with _steps(SCHEMA_STEPS):
                list(validator(schema).iter_errors(probe))
    except jsonschema.SchemaError as exc:
        raise ValueError(_schema_error(exc)) from None
    except Unresolvable as exc:
        raise ValueError(f"not a usable JSON Schema: cannot resolve $ref {exc}") from None
    except RecursionError:  # a chain of $refs, each shallow
        raise ValueError("not a usable JSON Schema: its $refs nest too deeply") from None
    except _OverBudget:
        raise ValueError(
            f"not a usable JSON Schema: checking even an empty event takes over {SCHEMA_STEPS:,} steps "
            "(its $refs multiply the work)"
        ) from None


def compile_schema(schema: Any) -> Callable[[Any], None]:
    """Return a function that raises ValueError when data fails ``schema``.

    A schema saved past the admin's check (fixtures, the ORM) refuses every
    event with the reason, rather than failing the request.
    """
    try:
        check_schema(schema)
    except ValueError as exc:
        return _refuse_all(f"the topic's schema is unusable ({exc})")
    validator = _validator_class(schema)(schema)

    def validate(data: Any) -> None:
        values = count_values(data, MAX_DATA_DEPTH)
        if values is None:
            raise ValueError(f"data is nested more than {MAX_DATA_DEPTH} levels deep, the most a schema checks")
        steps = SCHEMA_STEPS + SCHEMA_STEPS_PER_VALUE * values
        try:
            with _steps(steps):
                error = jsonschema.exceptions.best_match(validator.iter_errors(data))
        except Unresolvable as exc:  # a $ref the admin could not see resolve
            raise ValueError(f"the topic's schema cannot be applied: unresolvable $ref {exc}") from None
        except RecursionError:
            raise ValueError("data is nested too deeply to check against the topic's schema") from None
        except _OverBudget:
            raise ValueError(f"checking this data against the topic's schema takes over {steps:,} steps") from None
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            raise ValueError(f"data at {where}: {error.message}")

    return validate


def depth_over(value: Any, limit: int) -> bool:
    """True if ``value`` nests lists and dicts more than ``limit`` levels deep (a scalar is 0, ``[]`` is 1)."""
    return count_values(value, limit) is None


def count_values(value: Any, depth_limit: int) -> int | None:
    """How many JSON values ``value`` holds, itself included; None if nested past ``depth_limit``.

    Walks with a stack of its own, so it cannot itself run out of Python's.
    """
    stack, count = [(value, 1)], 0
    while stack:
        item, depth = stack.pop()
        count += 1
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > depth_limit:
            return None
        stack.extend((child, depth + 1) for child in children)
    return count


def _check_schema_shape(schema: Any) -> None:
    if depth_over(schema, MAX_SCHEMA_DEPTH):
        raise ValueError(f"the schema is nested more than {MAX_SCHEMA_DEPTH} levels deep")
    size = len(orjson.dumps(schema))
    if size > MAX_SCHEMA_BYTES:
        raise ValueError(f"the schema is {size:,} bytes as JSON, over the limit of {MAX_SCHEMA_BYTES:,} bytes")
    if _has_keyword(schema, "unevaluatedProperties") and _has_keyword(schema, "patternProperties"):
        raise ValueError("unevaluatedProperties beside patternProperties is not supported; use additionalProperties")


def _has_keyword(schema: Any, keyword: str) -> bool:
    stack = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if keyword in item:
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _schema_error(exc: jsonschema.SchemaError) -> str:
    if exc.validator == "format" and exc.validator_value == "regex":
        reason = _re2_reason(exc.cause)
        return (
            f'not a valid JSON Schema: pattern "{exc.instance}" cannot be used: {reason}. '
            "Patterns run on RE2, which never backtracks, "
            "so backreferences (\\1) and lookaround ((?=...), (?!...), (?<=...), (?<!...)) are not supported"
        )
    return f"not a valid JSON Schema: {exc.message}"


def _re2_reason(error: BaseException | None) -> str:
    reason = error.args[0] if error is not None and error.args else "not a regular expression"
    return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)


# -- RE2 in jsonschema: the keywords that match regular expressions ---------------


@functools.lru_cache(maxsize=1024)
def _regex(pattern: str) -> re2._Regexp:
    """The compiled pattern (raises ``re2.error`` if RE2 cannot run it); topics reuse theirs."""
    return re2.compile(pattern, _RE2_OPTIONS)


def _search(pattern: str, text: str) -> bool:
    return _regex(pattern).search(text) is not None


def _regex_format(value: Any) -> bool:
    if isinstance(value, str):
        _regex(value)
    return True


@functools.cache
def _re2_format_checker(validator_class: type) -> jsonschema.FormatChecker:
    """The draft's own format checker, with ``regex`` meaning "RE2 can compile it"."""
    checker = jsonschema.FormatChecker(formats=())
    checker.checkers = {**validator_class.FORMAT_CHECKER.checkers, "regex": (_regex_format, (re2.error,))}
    return checker


def _pattern(validator: Any, pattern: str, instance: Any, schema: dict) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: dict, instance: Any, schema: dict) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for name, value in instance.items():
            if _search(pattern, name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _additional_properties(validator: Any, extra: Any, instance: Any, schema: dict) -> Iterator[ValidationError]:
    """jsonschema's ``additionalProperties``, telling extras from pattern matches with RE2."""
    if not validator.is_type(instance, "object"):
        return
    known, patterns = schema.get("properties", {}), list(schema.get("patternProperties", {}))
    extras = sorted((n for n in instance if n not in known and not any(_search(p, n) for p in patterns)), key=str)
    if validator.is_type(extra, "object"):
        for name in extras:
            yield from validator.descend(instance[name], extra, path=name)
    elif not extra and extras:
        names = ", ".join(repr(name) for name in extras)
        if patterns:
            verb = "does" if len(extras) == 1 else "do"
            regexes = ", ".join(repr(p) for p in sorted(patterns))
            yield ValidationError(f"{names} {verb} not match any of the regexes: {regexes}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(f"Additional properties are not allowed ({names} {verb} unexpected)")


_RE2_KEYWORDS = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}


_steps_left: ContextVar[list[int] | None] = ContextVar("eventflow_schema_steps", default=None)


class _OverBudget(Exception):
    """A schema check used up its steps (``_steps``)."""


@contextmanager
def _steps(budget: int) -> Iterator[None]:
    """Let the schema checks inside take at most ``budget`` keyword steps (then ``_OverBudget``)."""
    token = _steps_left.set([budget])
    try:
        yield
    finally:
        _steps_left.reset(token)


def _metered(keyword: Callable) -> Callable:
    def check(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        left = _steps_left.get()
        if left is not None:
            left[0] -= 1
            if left[0] < 0:
                raise _OverBudget
        return keyword(validator, value, instance, schema)

    return check


@functools.cache
def _re2_validator(draft: type) -> type:
    """``draft`` with RE2 for regular expressions, and every keyword metered by ``_steps``."""
    keywords = {**draft.VALIDATORS, **_RE2_KEYWORDS}
    return jsonschema.validators.extend(draft, validators={name: _metered(k) for name, k in keywords.items()})


def _validator_class(schema: Any) -> type:
    """The validator for the schema's draft (``$schema``; 2020-12 by default), matching with RE2."""
    return _re2_validator(jsonschema.validators.validator_for(schema))


def _refuse_all(reason: str) -> Callable[[Any], None]:
    def validate(data: Any) -> None:
        raise ValueError(reason)

    return validate
