"""A creation session being watched: the curation grid's poll (every 2 s per open page) and
generation-status (scripts). Each poll asks for a fresh pass of the session's jobs, then
reads what its answer is made of: the session, its cut jobs, its cut rows with their calls,
and whether the fal account is paused. Those rows are the key of the answer kept by
`webtoon.answers.kept`; a poll that finds them unchanged sends the answer made from them
without reading anything else, rendering or serialising (issue 19)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.db import connection
from django.http import Http404

from webtoon.answers import column, field_values, instances, param, placeholders, select, table
from webtoon.jobs import account
from webtoon.jobs.models import Job, RemoteCall

from . import generation
from .enums import CharacterStatus
from .models import Character, CreationSession, Cut, Sample

# The runner's lease and the refresh debounce: written on every pass, shown nowhere.
JOB_BOOKKEEPING = frozenset({"locked_until", "last_checked_at"})


@dataclass
class Watched:
    session: CreationSession
    jobs: list[Job]
    parts: tuple  # everything an answer about the session is made of


def session_for(owner, session_id) -> CreationSession:
    """One of the owner's creation sessions by its public id (anyone else's: 404)."""
    return _owned(CreationSession, session_id, owner)


def job_for(owner, task_id, kind: str) -> Job:
    return _owned(Job, task_id, owner, f"{column(Job, 'kind')} = %s", kind)


def watch_job(owner, task_id) -> tuple[Job, Watched]:
    """generation-status: the session of one of the owner's cut jobs, watched."""
    job = job_for(owner, task_id, generation.CUTS.name)
    session = _one(
        CreationSession, f"{column(CreationSession, 'id')} = %s", [job.subject["session"]]
    )
    return job, watch(session)


def card_rows(owner, character_id) -> tuple[Character, list[Sample]]:
    """A My Characters card's poll (every 5 s while training): the owner's character (not
    deleted) with its training job, and all its test images (presenters.card_context)."""
    not_deleted = f"{column(Character, 'status')} <> %s"
    character = _owned(Character, character_id, owner, not_deleted, CharacterStatus.DELETED)
    if character.training_job_id is not None:
        found = instances(Job, f"{column(Job, 'id')} = %s", [character.training_job_id])
        character.training_job = found[0] if found else None
    samples = instances(
        Sample,
        f"{column(Sample, 'character')} = %s",
        [character.pk],
        f"ORDER BY {column(Sample, 'number')}",
    )
    return character, samples


def watch(session: CreationSession) -> Watched:
    jobs_of_session = generation.watch_session(session)
    return Watched(session, jobs_of_session, parts_of(session, jobs_of_session))


def parts_of(session: CreationSession, jobs_of_session: list[Job]) -> tuple:
    return (
        field_values(session),
        [field_values(j, JOB_BOOKKEEPING) for j in jobs_of_session],
        select(_cut_rows_sql(connection.vendor), [session.pk]),
        _deadline_jobs(jobs_of_session),
        account.paused() is not None,
    )


def _owned(model, public_id, owner, also: str = "", *also_params):
    """The owner's row of `model` by its public id (and `also`), else a 404."""
    where = f"{column(model, 'public_id')} = %s AND {column(model, 'owner')} = %s"
    params = [param(model, "public_id", public_id), owner.pk, *also_params]
    return _one(model, f"{where} AND {also}" if also else where, params)


def _one(model, where: str, params: list):
    found = instances(model, where, params)
    if not found:
        raise Http404
    return found[0]


@functools.cache
def _cut_rows_sql(vendor: str) -> str:
    """generation.CUT_COLUMNS in one read: the cut's own columns, then its call's (written
    once per database kind)."""
    names = []
    for name in generation.CUT_COLUMNS:
        relation, _sep, field = name.partition("__")
        if field:
            names.append(column(RemoteCall, field, "rc"))
        else:
            names.append(column(Cut, "call" if name == "call_id" else name, "c"))
    return (
        f"SELECT {', '.join(names)} FROM {table(Cut, 'c')} LEFT JOIN {table(RemoteCall, 'rc')}"
        f" ON rc.{column(RemoteCall, 'id')} = c.{column(Cut, 'call')}"
        f" WHERE c.{column(Cut, 'session')} = %s ORDER BY c.{column(Cut, 'number')}"
    )


def _deadline_jobs(jobs_of_session: list[Job]) -> list[tuple]:
    """The finished jobs with a call past its deadline (generation.deadline_message)."""
    ended = [j.pk for j in jobs_of_session if j.is_terminal]
    if not ended:
        return []
    return select(
        f"SELECT DISTINCT {column(RemoteCall, 'job')} FROM {table(RemoteCall)}"
        f" WHERE {column(RemoteCall, 'job')} IN ({placeholders(ended)})"
        f" AND {column(RemoteCall, 'error_code')} = %s",
        [*ended, "deadline"],
    )
