"""Poll answers kept by what they are made of (issue 19).

A page polls the same question every few seconds, and most polls find nothing changed. A
poll that reads the rows its answer is made from can reuse the answer made from the same
rows: the rows themselves (and whatever else goes in: the user, the language, the clock's
share) are the cache key, so a kept answer is never older than what it shows, in any
process, whichever code path wrote the rows. Nothing has to remember to forget an answer.

The reads a steady poll makes go through SQL written once from the models (`select`):
Django's query compilation, not the database, was most of a poll's time (a user row costs
0.18 ms through `.get()`, 0.012 ms through a cursor; docs/PERFORMANCE.md).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model
from django.db.models.sql import Query
from django.dispatch import receiver
from django.utils import timezone, translation

T = TypeVar("T")
M = TypeVar("M", bound=Model)

# How long an answer nobody asks for again stays in the cache (its key changes with its rows,
# so this bounds memory only); an answer that moves with the clock says when it stops being
# true (`kept`'s build returns that instant).
ANSWER_SECONDS = 120


def column(model: type[Model], name: str, alias: str = "") -> str:
    """`alias.column` of a model field, quoted for the database in use."""
    quoted = connection.ops.quote_name(model._meta.get_field(name).column)
    return f"{alias}.{quoted}" if alias else quoted


def table(model: type[Model], alias: str = "") -> str:
    quoted = connection.ops.quote_name(model._meta.db_table)
    return f"{quoted} {alias}" if alias else quoted


def param(model: type[Model], name: str, value):
    """A value as the database stores that field (a UUID is 32 hex characters on SQLite)."""
    return model._meta.get_field(name).get_db_prep_value(value, connection)


def placeholders(values: Sequence) -> str:
    return ", ".join(["%s"] * len(values))


def select(sql: str, params: Iterable = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall()


def instances(model: type[M], where: str, params: Iterable = (), order: str = "") -> list[M]:
    """`model`'s rows as instances, converted as the ORM converts them; the statement and
    the converters are made once per model and connection (`model.objects.raw` makes them
    again on every call: 0.06 ms, a `.get()` 0.18 ms, this 0.03 ms)."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    head, names, compiler, converters = _reader(model, wrapper)
    rows = select(f"{head} WHERE {where} {order}", params)
    if converters:
        rows = compiler.apply_converters(rows, converters)
    return [model.from_db(wrapper.alias, names, list(row)) for row in rows]


@functools.lru_cache(maxsize=256)
def _reader(model: type[Model], wrapper) -> tuple:
    # Per connection object: converters are the connection's bound methods, and each thread
    # has its own (kept for the thread's life, reconnecting inside it).
    fields = model._meta.concrete_fields
    compiler = wrapper.ops.compiler("SQLCompiler")(Query(model), wrapper, wrapper.alias)
    converters = compiler.get_converters([f.get_col(model._meta.db_table) for f in fields])
    quote = wrapper.ops.quote_name
    head = f"SELECT {', '.join(quote(f.column) for f in fields)} FROM {quote(model._meta.db_table)}"
    return head, [f.attname for f in fields], compiler, converters


def field_values(obj: Model, leave_out: frozenset[str] = frozenset()) -> tuple:
    """A row's stored values, as a key part."""
    return tuple(
        getattr(obj, f.attname) for f in obj._meta.concrete_fields if f.attname not in leave_out
    )


def kept(
    name: str,
    parts: Sequence,
    build: Callable[[], tuple[T, datetime | None]],
) -> T:
    """The answer made from `parts`, made by `build` only when no process has kept it.

    `parts` must hold everything the answer is made of. `build` returns the answer and the
    instant it stops being true with the same parts (something shown moves with the clock),
    or None when only the parts can change it; an answer true only now (until = now) is not
    kept."""
    key = f"answer:{name}:{digest((translation.get_language(), _settings_digest(), *parts))}"
    now = timezone.now()
    found = cache.get(key)
    # The instant is checked here, not left to the cache's expiry: Redis keeps its own clock.
    if found is not None and (found[1] is None or now < found[1]):
        return found[0]
    answer, until = build()
    if until is None or now < until:
        cache.set(key, (answer, until), ANSWER_SECONDS)
    return answer


def digest(parts: Sequence) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=20).hexdigest()


@functools.cache
def _settings_digest() -> str:
    """Prices, minimums and the like are settings: an answer made under others is not reused
    (a new deploy's settings, a test's override_settings)."""
    names = sorted(name for name in dir(settings) if name.isupper())
    return digest([(name, getattr(settings, name)) for name in names])


@receiver(setting_changed)
def _forget_settings_digest(**kwargs) -> None:
    _settings_digest.cache_clear()
