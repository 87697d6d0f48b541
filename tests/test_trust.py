"""Issue 15, at the API and page level: a studio a Korean creator trusts with money.

The browser half (layouts, live updates) is tests/test_browser_trust.py."""

from datetime import timedelta

import pytest
from django.utils import timezone

from characters import queries, training
from characters.models import Character, Cut
from scenes.models import Scene
from tests.characters.factories import trained_character
from tests.characters.test_training import make_session
from webtoon.jobs.models import CallState, Job, RemoteCall
from webtoon.prompting.models import PromptTranslation

pytestmark = pytest.mark.django_db

LLM = "fal-ai/any-llm"


def api_post(client, path, body):
    return client.post(f"/api/{path}", body, content_type="application/json")


# --- schema validation errors are Korean --------------------------------------------------------
def test_api_missing_field_is_korean(alice_client):
    response = api_post(alice_client, "character/prepare-training-data", {"character_name": "박"})
    assert response.status_code == 422
    assert response.json() == {"detail": "session_id: 필수 항목입니다"}


def test_api_wrong_types_are_korean(alice_client):
    response = api_post(
        alice_client, "character/select-cuts", {"session_id": "not-a-uuid", "selected_cut_ids": "x"}
    )
    detail = response.json()["detail"]
    assert response.status_code == 422
    assert "session_id: 올바른 ID 형식이 아닙니다" in detail
    assert "selected_cut_ids: 목록이어야 합니다" in detail
    assert "Field required" not in detail and "should be" not in detail


# --- the offline banner speaks to users; FAL_KEY only on staff pages ---------------------------
def test_offline_banner_speaks_to_users_without_fal_key(alice_client):
    html = alice_client.get("/").content.decode()
    assert "미리보기 모드: 실제 AI 대신 예시 그림이 나옵니다" in html
    assert "FAL_KEY" not in html


def test_staff_pages_carry_the_fal_key_hint(admin_client):
    html = admin_client.get("/admin/").content.decode()
    assert 'data-testid="staff-offline-hint"' in html and "FAL_KEY" in html


# --- styled Korean error pages with navigation, and a favicon ----------------------------------
@pytest.mark.parametrize(
    "url, status, title",
    [("/no-such-page/", 404, "페이지를 찾을 수 없습니다")],
)
def test_error_page_is_korean_with_navigation(alice_client, url, status, title):
    response = alice_client.get(url)
    html = response.content.decode()
    assert response.status_code == status
    assert title in html and 'data-testid="error-page"' in html
    assert 'href="/characters/"' in html and 'href="/scenes/"' in html  # a way back
    assert "css/app.css" in html and "favicon.svg" in html


def test_someone_elses_character_page_is_the_styled_404(alice_client, other_user):
    theirs = trained_character(other_user)
    response = alice_client.get(f"/characters/{theirs.public_id}/")
    assert response.status_code == 404
    assert "페이지를 찾을 수 없습니다" in response.content.decode()


def test_csrf_failure_is_a_korean_403(user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/characters/new/", {})
    assert response.status_code == 403
    assert "보안 확인이 만료되었습니다" in response.content.decode()


def test_server_error_page_is_korean(rf, user):
    from webtoon.views import server_error

    request = rf.get("/")
    request.user = user
    response = server_error(request)
    assert response.status_code == 500
    assert "일시적인 오류가 발생했습니다" in response.content.decode()


def test_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")


# --- the 15-cut minimum is a rule ----------------------------------------------------------------
def test_prepare_training_data_below_15_is_422_in_korean(alice_client, user, offline):
    session = make_session(user, cuts=14)
    response = api_post(
        alice_client,
        "character/prepare-training-data",
        {"session_id": str(session.public_id), "character_name": "박사장"},
    )
    assert response.status_code == 422
    assert response.json()["detail"] == "학습하려면 최소 15장을 선택해야 합니다 (지금 14장)."
    assert not Character.objects.exists()


def test_prepare_page_below_15_refuses_and_never_shows_the_check_mark(alice_client, user, offline):
    session = make_session(user, cuts=14)
    url = f"/characters/sessions/{session.public_id}/prepare/"
    page = alice_client.get(url).content.decode()
    assert "⚠️ 선택: 14/14장" in page and "✅ 선택" not in page
    response = alice_client.post(url, {"name": "박사장"})
    assert "학습하려면 최소 15장을 선택해야 합니다" in response.content.decode()
    assert not Character.objects.exists()


def test_curation_counter_and_next_step_follow_the_minimum(alice_client, user, offline):
    session = make_session(user, cuts=16)
    url = f"/characters/sessions/{session.public_id}/"
    page = alice_client.get(url).content.decode()
    assert "✅ 선택: 16/16장" in page and "다음 단계: 16장으로 캐릭터 학습" in page
    for number in (1, 2):
        fragment = alice_client.post(
            f"{url}cuts/{number}/toggle/", {}, headers={"HX-Request": "true"}
        ).content.decode()
    # 14 left: no ✅, and the out-of-band "다음 단계" is a disabled button saying why.
    assert "⚠️ 선택: 14/16장" in fragment and "✅" not in fragment
    assert 'data-waiting="minimum"' in fragment and "1장 더 필요" in fragment


def _checking(session, number):
    """A cut whose image has just arrived and whose quality check has not answered yet."""
    job = Job.objects.create(owner=session.owner, kind="cuts", subject={"session": session.pk})
    call = RemoteCall.objects.create(
        job=job, slot=number, endpoint="x", backend="offline", state=CallState.SUCCEEDED,
        finished_at=timezone.now() - timedelta(seconds=5),
    )
    Cut.objects.filter(session=session, number=number).update(call=call, quality_ok=None)


def test_next_step_waits_for_running_quality_checks(alice_client, user, offline):
    session = make_session(user, cuts=16)
    _checking(session, 3)
    page = alice_client.get(f"/characters/sessions/{session.public_id}/").content.decode()
    assert 'data-waiting="checks"' in page and "남은 검사 1장" in page
    response = api_post(
        alice_client,
        "character/prepare-training-data",
        {"session_id": str(session.public_id), "character_name": "박사장"},
    )
    assert response.status_code == 409
    assert "품질 검사가 아직 1장 남았습니다" in response.json()["detail"]


# --- Korean in, Korean out: the LLM prompt, cached, with its cost; dictionary fallback --------
def _scene(client, capture, **body):
    with capture(execute=True):
        return api_post(client, "scene/generate-with-character", body)


def test_free_korean_becomes_an_english_prompt_once_per_text(
    alice_client, user, fal, django_capture_on_commit_callbacks, settings
):
    boss = trained_character(user)
    fal.llm_replies["난처한 표정"] = "embarrassed awkward smile"
    for _ in range(2):
        response = _scene(
            alice_client,
            django_capture_on_commit_callbacks,
            character_id=str(boss.public_id),
            expression="난처한 표정",
            location="사무실",
        )
        assert response.status_code == 202
    prompts = [r.arguments["prompt"] for r in fal.submitted("fal-ai/flux-lora")]
    assert prompts == [f"{boss.trigger_word}, embarrassed awkward smile, office"] * 2
    assert len(fal.llm_requests) == 1  # the second scene read the cache
    sent = fal.llm_requests[0]
    assert sent["model"] == settings.PROMPT_LLM_MODEL and "난처한 표정" in sent["prompt"]
    row = PromptTranslation.objects.get()
    assert row.source == "난처한 표정" and row.english == "embarrassed awkward smile"
    assert float(row.cost) == settings.COST_PER_LLM_PROMPT and row.hits == 1


def test_llm_failure_falls_back_to_the_dictionary(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    boss = trained_character(user)
    fal.fail("llm", status=500, times=5)
    response = _scene(
        alice_client,
        django_capture_on_commit_callbacks,
        character_id=str(boss.public_id),
        expression="난처한 표정",
        location="사무실",
    )
    assert response.status_code == 202
    (request,) = fal.submitted("fal-ai/flux-lora")
    assert request.arguments["prompt"] == f"{boss.trigger_word}, 난처한 표정, office"
    assert not PromptTranslation.objects.exists()


def test_offline_backend_uses_the_dictionary_without_asking(
    alice_client, user, offline, django_capture_on_commit_callbacks
):
    boss = trained_character(user)
    response = _scene(
        alice_client,
        django_capture_on_commit_callbacks,
        character_id=str(boss.public_id),
        expression="미소",
        location="회의실",
        situation="밥 먹는",
    )
    assert response.status_code == 202
    scene = Scene.objects.get()
    assert scene.prompt == f"{boss.trigger_word}, gentle smile, meeting room, 밥 먹는"
    assert not PromptTranslation.objects.exists()


def test_trained_character_factory_still_counts_as_active(user):
    assert queries.character_for(user, trained_character(user).public_id).status == "active"


# --- the scene page: guardrails next to the button, Korean words shown ------------------------
def test_scene_with_nothing_described_is_refused_next_to_the_button(alice_client, user, offline):
    boss = trained_character(user)
    response = alice_client.post(
        "/scenes/one/", {"character": str(boss.public_id)}, headers={"HX-Request": "true"}
    )
    assert "표정, 장소, 상황 중 하나 이상을 입력해주세요." in response.content.decode()
    assert response["HX-Retarget"] == "#one-error" and not Scene.objects.exists()


def test_api_scene_with_a_character_and_nothing_described_is_422(alice_client, user, offline):
    boss = trained_character(user)
    response = api_post(
        alice_client, "scene/generate-with-character", {"character_id": str(boss.public_id)}
    )
    assert response.status_code == 422
    assert response.json()["detail"] == "표정, 장소, 상황 중 하나 이상을 입력해주세요."


def test_same_character_twice_is_refused_next_to_the_button(alice_client, user, offline):
    boss = trained_character(user)
    body = {"character_a": str(boss.public_id), "character_b": str(boss.public_id),
            "location": "카페"}
    response = alice_client.post("/scenes/two/", body, headers={"HX-Request": "true"})
    assert "같은 캐릭터를 두 번 고를 수 없습니다" in response.content.decode()
    assert response["HX-Retarget"] == "#two-error" and not Scene.objects.exists()


def test_scale_sum_over_the_limit_needs_confirmation_before_paying(
    alice_client, user, offline, django_capture_on_commit_callbacks
):
    a, b = trained_character(user, name="김대리"), trained_character(user, name="이부장")
    body = {"character_a": str(a.public_id), "character_b": str(b.public_id),
            "location": "카페", "lora_scale_a": "1.0", "lora_scale_b": "0.9"}
    refused = alice_client.post("/scenes/two/", body, headers={"HX-Request": "true"})
    assert "합이 1.5를 넘습니다" in refused.content.decode()
    assert refused["HX-Retarget"] == "#two-error" and not Job.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        made = alice_client.post(
            "/scenes/two/", body | {"confirm_scale_sum": "on"},
            headers={"HX-Request": "true"},
        )
    assert made.status_code == 200 and Scene.objects.count() == 1
    assert 'id="two-error" hx-swap-oob="innerHTML"' in made.content.decode()  # cleared


def test_scene_page_shows_korean_words_prices_and_the_prompt_behind_a_toggle(
    alice_client, user, offline, django_capture_on_commit_callbacks
):
    boss = trained_character(user, name="박사장")
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(
            "/scenes/one/",
            {"character": str(boss.public_id), "expression": "미소", "location": "사무실",
             "image_size": "portrait_4_3", "lora_scale": "0.8"},
            headers={"HX-Request": "true"},
        )
    page = alice_client.get("/scenes/").content.decode()
    assert 'data-testid="scene-words">표정: 미소 · 장소: 사무실<' in page
    assert "프롬프트 보기" in page and f"{boss.trigger_word}, gentle smile, office" in page
    from scenes import separation
    from webtoon.ui.money import price_text

    one = price_text(separation.estimate(False, "portrait_4_3")["total"])
    # Paid buttons show prices (the page's script follows the size and method from there).
    assert f"씬 생성 · <span data-chosen-price>{one}</span>" in page
    assert "$" in one and "₩" in one
    assert "캐릭터 반영 강도" in page and "LoRA 강도" not in page
    assert ">세로 4:3<" in page and ">portrait_4_3<" not in page


def test_deleting_a_scene_says_so_and_the_empty_state_is_on_the_page(
    alice_client, user, offline, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        api_post(alice_client, "scene/generate-with-character", {"expression": "미소"})
    scene = Scene.objects.get()
    page = alice_client.get("/scenes/").content.decode()
    assert 'data-empty-for="#scenes"' in page  # shown by app.js once the last card is gone
    response = alice_client.post(
        f"/scenes/{scene.public_id}/delete/", headers={"HX-Request": "true"}
    )
    assert "씬을 삭제했습니다." in response.content.decode()


# --- the 작업 page names each job, newest first, paginated ------------------------------------
def test_jobs_page_names_character_kind_time_and_link_newest_first(
    alice_client, user, offline, django_capture_on_commit_callbacks
):
    boss = trained_character(user, name="박사장")
    with django_capture_on_commit_callbacks(execute=True):
        api_post(alice_client, f"character/{boss.public_id}/test-generate", {"prompt": "미소"})
        api_post(
            alice_client,
            "scene/generate-with-character",
            {"character_id": str(boss.public_id), "expression": "미소"},
        )
    page = alice_client.get("/jobs/").content.decode()
    cards = page.split('data-testid="job-card"')[1:]
    assert len(cards) == 2
    assert "씬 생성" in cards[0] and "테스트 생성" in cards[1]  # newest first
    for card in cards:
        assert f'href="{boss.get_absolute_url()}">박사장<' in card or ">박사장</a>" in card
        assert 'data-testid="job-time"' in card and "월" in card
    assert 'href="/scenes/#scene-' in cards[0]


def test_jobs_page_is_paginated(alice_client, user, offline):
    from webtoon.jobs import services as jobs

    for i in range(23):
        jobs.create_image_job(user, f"office {i}", "square_hd")
    first = alice_client.get("/jobs/").content.decode()
    assert first.count('data-testid="job-card"') == 20 and "1 / 2" in first
    second = alice_client.get("/jobs/?page=2").content.decode()
    assert second.count('data-testid="job-card"') == 3


# --- prices on every paid button, in $ and ₩ with thousands separators --------------------------
def test_price_filter_has_dollars_and_won_with_separators(settings):
    from webtoon.ui.money import price_text

    assert price_text(2) == "$2.00 · ₩2,800"
    assert price_text(0.48) == "$0.48 · ₩672"


def test_paid_buttons_show_their_price(alice_client, user, offline):
    session = make_session(user, cuts=16)
    page = alice_client.get(f"/characters/sessions/{session.public_id}/").content.decode()
    # Priced like the ledger (FAL_PRICES): Kontext $0.04 an image, flux-lora $0.035/MP.
    assert "추가 생성 (4컷) · $0.16 · ₩224" in page
    assert "다시 생성 · $0.04 · ₩56" in page
    boss = trained_character(user)
    detail = alice_client.get(boss.get_absolute_url()).content.decode()
    assert "테스트 생성 · $0.04 · ₩49" in detail
    style = alice_client.get(f"/characters/new/{session.photo.public_id}/style/").content.decode()
    assert "24컷 생성 시작 · <span data-chosen-price>$0.96 · ₩1,344</span>" in style
    assert style.count('data-testid="style-price"') == 6  # each style its own price
    jobs_page = alice_client.get("/jobs/").content.decode()
    assert "생성 · $0.04 · ₩49" in jobs_page


# --- no silent second paid set; unfinished work listed, resumed or discarded -------------------
def test_second_set_for_the_same_photo_needs_resume_or_confirmation(
    alice_client, user, offline, django_capture_on_commit_callbacks
):
    session = make_session(user, cuts=16)
    url = f"/characters/new/{session.photo.public_id}/style/"
    page = alice_client.get(url).content.decode()
    assert "이어서 하기" in page and f"/characters/sessions/{session.public_id}/" in page
    refused = alice_client.post(url, {"style_id": "original"})
    assert refused.status_code == 200
    assert "이 사진으로 만든 컷이 이미 있습니다" in refused.content.decode()
    assert Job.objects.count() == 0
    with django_capture_on_commit_callbacks(execute=True):
        made = alice_client.post(url, {"style_id": "original", "confirm_new": "on"})
    assert made.status_code == 302 and Job.objects.filter(kind="cuts").count() == 1


def test_unfinished_work_is_listed_and_can_be_discarded(alice_client, user, offline):
    session = make_session(user, cuts=16)
    page = alice_client.get("/characters/").content.decode()
    assert "만들던 캐릭터" in page and "컷 16장 중 16장 선택" in page
    assert f'href="/characters/sessions/{session.public_id}/"' in page  # 이어서 하기
    response = alice_client.post(
        f"/characters/sessions/{session.public_id}/discard/", headers={"HX-Request": "true"}
    )
    assert "만들던 캐릭터(📷 원본 스타일 그대로)를 버렸습니다." in response.content.decode()
    from characters.models import CreationSession

    assert not CreationSession.objects.filter(pk=session.pk).exists()
    assert "만들던 캐릭터" not in alice_client.get("/characters/").content.decode()


def test_a_packaged_draft_resumes_at_its_cost_notice(alice_client, user, offline, settings):
    session = make_session(user, cuts=15)
    character = training.prepare_training_data(
        owner=user, session_id=session.public_id, character_name="김세무사"
    )
    page = alice_client.get("/characters/").content.decode()
    assert "김세무사" in page and f'href="/characters/{character.public_id}/train/"' in page
    assert 'data-testid="character-card"' not in page  # a draft is not a trained character


# --- training progress you can believe ---------------------------------------------------------
def test_remaining_time_is_in_minutes():
    from characters.presenters import remaining_text

    assert remaining_text(1080) == "약 18분"
    assert remaining_text(61) == "약 2분"
    assert remaining_text(30) == "1분 이내"


def test_training_status_lists_the_three_test_images(alice_client, user, offline):
    boss = trained_character(user)
    job = Job.objects.create(
        owner=user, kind="training", state="succeeded", subject={"character": boss.pk}
    )
    boss.training_job = job
    boss.save(update_fields=["training_job"])
    body = alice_client.get(f"/api/character/training-status/{job.public_id}").json()
    assert [t["status"] for t in body["test_images"]] == ["ready"] * 3
    assert all(t["url"].startswith("/media/") for t in body["test_images"])


def test_character_page_title_follows_the_state(alice_client, user, offline):
    boss = trained_character(user, name="박사장")
    html = alice_client.get(boss.get_absolute_url()).content.decode()
    assert "<title>박사장 · 학습 완료</title>" in html
    boss.status = "failed"
    boss.save(update_fields=["status"])
    html = alice_client.get(boss.get_absolute_url()).content.decode()
    assert "<title>박사장 · 학습 실패</title>" in html and "학습 완료" not in html


def test_saving_settings_says_what_was_saved(alice_client, user, offline):
    boss = trained_character(user, name="박사장")
    response = alice_client.post(
        f"/characters/{boss.public_id}/edit/", {"name": "박대표", "lora_scale_default": "0.7"},
        follow=True,
    )
    saved = "&#x27;박대표&#x27; 설정을 저장했습니다 (기본 캐릭터 반영 강도 0.7)."
    assert saved in response.content.decode()


def test_trigger_word_lives_under_advanced(alice_client, user, offline):
    boss = trained_character(user)
    html = alice_client.get(boss.get_absolute_url()).content.decode()
    advanced = html.split('data-testid="advanced"')[1].split("</details>")[0]
    assert boss.trigger_word in advanced
    assert "캐릭터 반영 강도" in html and "높을수록 학습한 얼굴·옷 그대로" in html


# --- restoring gives back the same trigger word; a live copy asks replace / keep both ----------
def _backup_of(client, character) -> bytes:
    response = client.get(f"/api/character/{character.public_id}/download-backup")
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def _restore_page(client, data: bytes, **extra):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("backup.zip", data, content_type="application/zip")
    return client.post("/characters/restore/", {"backup": upload, **extra})


def test_restoring_a_deleted_character_gives_back_its_trigger_word(alice_client, user, offline):
    from decimal import Decimal

    from webtoon.jobs.models import Job

    boss = trained_character(user, name="박사장")
    boss.training_started_at = boss.trained_at - timedelta(minutes=18)
    boss.training_job = Job.objects.create(
        owner=user, kind="training", state="succeeded", cost_recorded=Decimal("2.027")
    )
    boss.save(update_fields=["training_started_at", "training_job"])
    data = _backup_of(alice_client, boss)
    alice_client.post(f"/characters/{boss.public_id}/delete/")
    response = _restore_page(alice_client, data)
    restored = Character.objects.exclude(status="deleted").get()
    assert response.status_code == 302 and restored.trigger_word == boss.trigger_word
    assert restored.training_images_count == 3 and restored.training_seconds == 18 * 60
    assert restored.restored_cost == Decimal("2.027")  # what making it cost comes back too
    page = alice_client.get(response["Location"]).content.decode()
    assert f"트리거 워드 {boss.trigger_word}, 학습 이미지 3장, 학습 시간 18분 0초" in page
    detail = alice_client.get(restored.get_absolute_url()).content.decode()
    assert "$2.03" in detail


def test_restoring_a_copy_asks_then_replaces(alice_client, user, offline):
    boss = trained_character(user, name="박사장")
    data = _backup_of(alice_client, boss)
    asked = _restore_page(alice_client, data)
    html = asked.content.decode()
    assert asked.status_code == 409 and 'data-testid="restore-choice"' in html
    assert f"트리거 워드 {boss.trigger_word}를 이미" in html and "둘 다 두기" in html
    assert Character.objects.count() == 1  # nothing restored before the choice
    done = alice_client.post("/characters/restore/", {"pending": "1", "on_conflict": "replace"})
    assert done.status_code == 302
    live = Character.objects.exclude(status="deleted").get()
    assert live.pk != boss.pk and live.trigger_word == boss.trigger_word


def test_restoring_a_copy_can_keep_both_with_a_warning(alice_client, user, offline):
    boss = trained_character(user, name="박사장")
    data = _backup_of(alice_client, boss)
    _restore_page(alice_client, data)
    done = alice_client.post(
        "/characters/restore/", {"pending": "1", "on_conflict": "keep_both"}, follow=True
    )
    live = Character.objects.exclude(status="deleted")
    words = sorted(live.values_list("trigger_word", flat=True))
    assert words == [boss.trigger_word, boss.trigger_word + "2"]
    assert "LoRA는 학습한 단어에 가장 잘 반응합니다" in done.content.decode()


def test_api_restore_of_a_copy_is_409_until_the_user_chooses(alice_client, user, offline):
    from django.core.files.uploadedfile import SimpleUploadedFile

    boss = trained_character(user, name="박사장")
    data = _backup_of(alice_client, boss)

    def restore(**extra):
        upload = SimpleUploadedFile("b.zip", data, content_type="application/zip")
        return alice_client.post("/api/character/restore-from-backup", {"backup": upload, **extra})

    first = restore()
    assert first.status_code == 409 and "replace 또는 keep_both" in first.json()["detail"]
    both = restore(on_conflict="keep_both")
    assert both.status_code == 201 and both.json()["trigger_word"] == boss.trigger_word + "2"
    assert "학습한 단어" in both.json()["warning"]


# --- no jargon: style cards, test prompts in Korean -------------------------------------------
def test_style_cards_show_korean_descriptions_and_example_pictures(alice_client, user, offline):
    from tests.characters.test_curation import astronaut_photo

    photo = astronaut_photo(user)
    page = alice_client.get(f"/characters/new/{photo.public_id}/style/").content.decode()
    assert page.count('data-testid="style-example"') == 6
    assert "/static/img/styles/chibi_2head.svg" in page
    assert "큰 머리, 작은 몸의 귀여운 2등신" in page
    assert "chibi style" not in page and "FLUX Kontext" not in page  # no English prompts


def test_korean_test_prompt_goes_to_fal_in_english_and_the_page_shows_korean(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    boss = trained_character(user, name="박사장")
    fal.llm_replies["세금 서류를 들고 웃는 모습"] = "smiling while holding tax papers"
    with django_capture_on_commit_callbacks(execute=True):
        html = alice_client.post(
            f"/characters/{boss.public_id}/test-generate/",
            {"prompt": "세금 서류를 들고 웃는 모습", "scale": "0.8", "image_size": "portrait_4_3"},
            headers={"HX-Request": "true"},
        ).content.decode()
    (request,) = fal.submitted("fal-ai/flux-lora")
    assert request.arguments["prompt"] == f"{boss.trigger_word}, smiling while holding tax papers"
    caption = html.split("<figcaption>")[1].split("</figcaption>")[0]
    assert "세금 서류를 들고 웃는 모습" in caption.split("프롬프트 보기")[0]
    assert "세로 4:3" in caption and "portrait_4_3" not in caption
    assert "smiling while holding tax papers" in caption.split("프롬프트 보기")[1]


def test_custom_style_in_korean_reaches_fal_in_english(
    alice_client, user, fal, django_capture_on_commit_callbacks
):
    from tests.characters.test_curation import astronaut_photo

    photo = astronaut_photo(user)
    fal.llm_replies["지브리풍 수채화"] = "Ghibli-like watercolor"
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            f"/characters/new/{photo.public_id}/style/",
            {"style_id": "custom", "custom_prompt": "지브리풍 수채화"},
        )
    assert response.status_code == 302
    prompts = [r.arguments["prompt"] for r in fal.submitted(settings_styled())]
    assert prompts and all(p.startswith("Ghibli-like watercolor, ") for p in prompts)
    assert len(fal.llm_requests) == 1  # 24 cuts, one translation


def settings_styled() -> str:
    from django.conf import settings

    return settings.FAL_ENDPOINTS["styled"]


def test_episode_editor_shows_the_panel_price_and_korean_sizes(alice_client, user, offline):
    created = api_post(alice_client, "episode/", {"title": "1화"})
    episode_id = created.json()["episode_id"]
    html = alice_client.get(f"/episodes/{episode_id}/").content.decode()
    assert "컷 생성 · 1컷당 $0.03 · ₩36" in html
    assert ">세로 4:3<" in html and ">portrait_4_3<" not in html and "LoRA 강도" not in html
