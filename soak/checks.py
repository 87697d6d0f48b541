"""The soak's invariants, read from the database, the media folder and the fal fake's record.

Each check returns (ok, lines): the lines say what was found, so a failure names its rows."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable

from django.apps import apps
from django.db import models

from characters.backup import local_backup_root
from characters.enums import CharacterStatus
from characters.models import Character, Cut
from webtoon.jobs.models import (
    TERMINAL_CALL_STATES,
    TERMINAL_JOB_STATES,
    CallAttempt,
    Job,
    RemoteCall,
)

Check = tuple[bool, list[str]]


def flows_settled(results: Iterable) -> Check:
    """Every flow finished, or failed with the cause the product gave."""
    results = list(results)
    finished = [r for r in results if r.outcome == "finished"]
    failed = [r for r in results if r.outcome == "failed"]
    silent = [
        r
        for r in results
        if r.outcome not in ("finished", "failed")
        or (r.outcome == "failed" and not r.cause.strip())
    ]
    lines = [f"{len(finished)} finished, {len(failed)} failed with a cause, {len(silent)} silent"]
    lines += [
        f"  {r.user}: failed at {(r.steps or ['start'])[-1]!r}: {r.cause[:300]}" for r in failed
    ]
    lines += [f"  {r.user}: {r.outcome} without a cause" for r in silent]
    return not silent, lines


def unfinished_jobs():
    return Job.objects.exclude(state__in=TERMINAL_JOB_STATES)


def unchecked_cuts():
    """Cuts with an image whose quality check has not run."""
    return Cut.objects.exclude(image="").filter(quality_ok__isnull=True)


def nothing_stuck() -> Check:
    """No job, call, character or cut check left in flight once the flows are over."""
    jobs = unfinished_jobs()
    calls = RemoteCall.objects.exclude(state__in=TERMINAL_CALL_STATES)
    characters = Character.objects.filter(
        status__in=(CharacterStatus.QUEUED, CharacterStatus.TRAINING)
    )
    unchecked = unchecked_cuts()
    failed_without_cause = Job.objects.filter(state="failed", error_code="")
    found = {
        "unfinished jobs": list(jobs.values_list("pk", "kind", "state")),
        "calls in flight": list(calls.values_list("pk", "state")),
        "characters still training": list(characters.values_list("pk", "status")),
        "cuts never quality-checked": list(unchecked.values_list("pk", flat=True)),
        "failed jobs without a cause": list(failed_without_cause.values_list("pk", "kind")),
    }
    lines = [f"{name}: {len(rows)} {rows[:10] if rows else ''}" for name, rows in found.items()]
    counts = Job.objects.values_list("state").annotate(n=models.Count("pk"))
    lines.append("jobs by state: " + ", ".join(f"{s}={n}" for s, n in sorted(counts)))
    return not any(found.values()), lines


def no_double_submission(submissions: list[dict]) -> Check:
    """fal never ran the same work twice for us: each of our calls has at most one request
    that fal delivered, a call was resubmitted only after its earlier request failed, and
    every request fal accepted that we never learnt of is one lost answer (a call failed
    as submit_unknown, not resubmitted)."""
    call_of = dict(RemoteCall.objects.exclude(request_id=None).values_list("request_id", "pk"))
    for rid, call_id in CallAttempt.objects.exclude(request_id="").values_list(
        "request_id", "call_id"
    ):
        call_of.setdefault(rid, call_id)
    per_call: dict[int, list[dict]] = defaultdict(list)
    orphans = []
    for sub in submissions:
        call_id = call_of.get(sub["request_id"])
        (per_call[call_id].append(sub) if call_id else orphans.append(sub))
    problems = []
    for call_id, subs in per_call.items():
        if sum(s["delivered"] for s in subs) > 1:
            problems.append(f"call {call_id}: fal delivered {len(subs)} requests")
        for earlier in subs[:-1]:
            if not (earlier["error"] or earlier["cancelled"]):
                problems.append(
                    f"call {call_id}: resubmitted while {earlier['request_id']} could still run"
                )
    lost = CallAttempt.objects.filter(outcome="submit_unknown").count()
    resubmitted_after_lost = (
        RemoteCall.objects.filter(history__outcome="submit_unknown")
        .exclude(error_code="submit_unknown")
        .distinct()
        .count()
    )
    if len(orphans) > lost:
        problems.append(
            f"{len(orphans)} requests fal accepted that we never recorded, "
            f"only {lost} calls failed as submit_unknown"
        )
    if resubmitted_after_lost:
        problems.append(f"{resubmitted_after_lost} calls went on after an unknown submit")
    lines = [
        f"{len(submissions)} requests accepted by fal for {len(per_call)} calls; "
        f"{len(orphans)} answers lost (each a call failed as submit_unknown: {lost})",
        *problems,
    ]
    return not problems, lines


def _referenced_files() -> set[str]:
    names: set[str] = set()
    for model in apps.get_models():
        fields = [f.name for f in model._meta.get_fields() if isinstance(f, models.FileField)]
        for field in fields:
            names.update(
                n for n in model.objects.exclude(**{field: ""}).values_list(field, flat=True) if n
            )
    return names


def files_consistent() -> Check:
    """Every stored file is referenced by a row, and every row's file is there: a walk of the
    media folder, or on S3 (`--cluster`) a listing of the bucket."""
    from webtoon.testing.storage_audit import referenced_names, stored_names

    on_disk = stored_names()
    referenced = _referenced_files() | referenced_names()
    unreferenced = sorted(on_disk - referenced)
    missing = sorted(referenced - on_disk)
    backup_root = local_backup_root()
    folders = (
        {p.name for p in backup_root.iterdir() if p.is_dir()} if backup_root.exists() else set()
    )
    kept = set(
        Character.objects.exclude(local_backup_path="").values_list("local_backup_path", flat=True)
    )
    stray_folders = sorted(f for f in folders if not any(k.rstrip("/").endswith(f) for k in kept))
    lines = [
        f"{len(on_disk)} files stored, {len(referenced)} referenced by rows",
        f"unreferenced files: {len(unreferenced)} {unreferenced[:10]}",
        f"rows whose file is missing: {len(missing)} {missing[:10]}",
        f"backup folders without a character: {len(stray_folders)} {stray_folders[:10]}",
    ]
    return not (unreferenced or missing or stray_folders), lines


def training_limit_held(limit: int) -> Check:
    """No user ever had more than `limit` trainings at fal at once (from every attempt's
    start and end)."""
    spans: dict[int, list[tuple]] = defaultdict(list)
    attempts = CallAttempt.objects.filter(call__job__kind="training").values_list(
        "call__job__owner_id", "started_at", "finished_at", "call__job__finished_at"
    )
    for owner, start, end, job_end in attempts:
        spans[owner].append((start, end or job_end))
    worst = {}
    for owner, rows in spans.items():
        events = sorted(
            [(s, 1) for s, _e in rows] + [(e, -1) for _s, e in rows if e is not None],
            key=lambda ev: (ev[0], ev[1]),
        )
        peak = now = 0
        for _t, delta in events:
            now += delta
            peak = max(peak, now)
        worst[owner] = peak
    over = {o: p for o, p in worst.items() if p > limit}
    peak = max(worst.values(), default=0)
    lines = [f"highest concurrent trainings for one user: {peak} (limit {limit})"]
    lines += [f"  user {o}: {p} at once" for o, p in over.items()]
    return not over, lines


def report(results, submissions, *, limit: int) -> tuple[bool, str]:
    checks = {
        "every flow finished or failed with a cause": flows_settled(results),
        "no job stuck": nothing_stuck(),
        "no paid fal call submitted twice": no_double_submission(submissions),
        "stored files and rows agree": files_consistent(),
        "per-user training limit held": training_limit_held(limit),
    }
    out = []
    for name, (ok, lines) in checks.items():
        out.append(f"[{'PASS' if ok else 'FAIL'}] {name}")
        out += [f"    {line}" for line in lines]
    return all(ok for ok, _ in checks.values()), "\n".join(out)


def dump(results) -> str:
    return json.dumps([r.__dict__ for r in results], ensure_ascii=False, indent=1)
