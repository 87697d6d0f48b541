"""Training progress read from every log shape a trainer on fal may print (issue 14 §4), on the
fal path: fal-client polls the HTTP fake, whose trainer logs in the shape under test."""

import re

import pytest
import time_machine
from django.utils import timezone

from webtoon.jobs.models import Job
from webtoon.jobs.progress import steps_from_logs

from .test_training import prepared, read_every, start, status

pytestmark = pytest.mark.django_db

# The fake's trainer logs steps 300, 600, ... of the 1500 the training asks for.
SHAPES = {
    "steps": "Training: step 300/1500 loss=0.08",
    "tqdm": " 20%|##        | 300/1500 [05:12<06:21,  2.16it/s]",
    "step_of": "Step 300 of 1500",
    "count": "steps: 300",
    "percent": "Training progress: 20.0 %",
}


@pytest.fixture
def character(user, fal, settings):
    settings.MIN_SELECTED_CUTS = 1  # a small session is enough to train for these tests
    return prepared(user)


def first_running_reads(client, character, fal) -> list[dict]:
    fal.running_polls = 4
    job = Job.objects.get(public_id=start(client, character).json()["task_id"])
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        reads = read_every(client, job, traveller, times=4)  # submit, queued, running x2
    assert [r["status"] for r in reads] == ["preparing", "preparing", "training", "training"]
    return reads[2:]



# "steps: 300" and "20.0 %" carry no total: the engine passes the requested steps.
@pytest.mark.parametrize("shape", SHAPES)
def test_training_progress_is_read_from_each_log_shape(alice_client, character, fal, shape):
    fal.training_logs = shape
    reads = first_running_reads(alice_client, character, fal)
    assert fal.submitted()[0].arguments["steps"] == 1500  # what "steps: 300" is out of
    assert [(r["current_step"], r["total_steps"]) for r in reads] == [(300, 1500), (600, 1500)]
    assert [r["progress_percent"] for r in reads] == [20, 40]
    assert [r["progress_is_estimate"] for r in reads] == [False, False]
    page = alice_client.get(character.get_absolute_url()).content.decode()
    assert re.search(r"600\s*/\s*1,?500", page)  # the step counter, read from the logs
    assert 'data-testid="progress-estimate"' not in page


@pytest.mark.parametrize("shape", ["plain", "none"])
def test_training_progress_without_steps_in_the_logs_is_called_an_estimate(
    alice_client, character, fal, shape
):
    fal.training_logs = shape
    reads = first_running_reads(alice_client, character, fal)
    assert all(r["progress_is_estimate"] for r in reads)
    page = alice_client.get(character.get_absolute_url()).content.decode()
    assert 'data-testid="progress-estimate"' in page and "예상" in page
    assert not re.search(r"\d\s*/\s*1,?500", page)  # no made-up step counter on the page


def test_training_status_before_and_after_running_is_no_estimate(alice_client, character, fal):
    fal.training_logs = "none"
    job = Job.objects.get(public_id=start(alice_client, character).json()["task_id"])
    assert status(alice_client, job).json()["progress_is_estimate"] is False  # preparing


@pytest.mark.parametrize("message", SHAPES.values())
def test_each_shape_reads_as_step_300_of_the_requested_1500(message):
    assert steps_from_logs([{"message": message}], expected_total=1500) == (300, 1500)


def test_another_counter_and_its_percentage_are_not_the_training_step():
    logs = [{"message": "Step 300 of 1500"}, {"message": "Saving checkpoint 1/3 (33%)"}]
    assert steps_from_logs(logs, expected_total=1500) == (300, 1500)


def test_a_bare_step_count_needs_the_requested_total():
    assert steps_from_logs([{"message": "steps: 300"}]) is None
