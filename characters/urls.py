from django.urls import path

from . import views

app_name = "characters"
urlpatterns = [
    path("", views.character_cards, name="list"),
    path("new/", views.new, name="new"),
    path("restore/", views.restore_page, name="restore"),
    path("new/<uuid:photo_id>/style/", views.style_select, name="style"),
    path("sessions/<uuid:session_id>/", views.session_detail, name="session"),
    path("sessions/<uuid:session_id>/poll/", views.session_poll, name="session_poll"),
    path("sessions/<uuid:session_id>/discard/", views.draft_discard, name="draft_discard"),
    path("sessions/<uuid:session_id>/prepare/", views.prepare, name="prepare"),
    path(
        "sessions/<uuid:session_id>/cuts/<int:number>/toggle/",
        views.cut_toggle,
        name="cut_toggle",
    ),
    path(
        "sessions/<uuid:session_id>/cuts/<int:number>/regenerate/",
        views.cut_regenerate,
        name="cut_regenerate",
    ),
    path(
        "sessions/<uuid:session_id>/cuts/select-all/",
        views.cuts_select_all,
        {"selected": True},
        name="cuts_select_all",
    ),
    path(
        "sessions/<uuid:session_id>/cuts/clear-all/",
        views.cuts_select_all,
        {"selected": False},
        name="cuts_clear_all",
    ),
    path(
        "sessions/<uuid:session_id>/cuts/additional/",
        views.cuts_additional,
        name="cuts_additional",
    ),
]
urlpatterns += [
    path("<uuid:character_id>/", views.detail, name="detail"),
    path("<uuid:character_id>/train/", views.train, name="train"),
    path("<uuid:character_id>/retry/", views.retry, name="retry"),
    path("<uuid:character_id>/card/", views.card, name="card"),
    path(
        "<uuid:character_id>/delete/confirm/<int:step>/",
        views.delete_confirm,
        name="delete_confirm",
    ),
    path("<uuid:character_id>/delete/", views.delete, name="delete"),
    path("<uuid:character_id>/edit/", views.edit, name="edit"),
    path("<uuid:character_id>/test-generate/", views.test_generate, name="test_generate"),
    path(
        "<uuid:character_id>/gallery/<int:image_id>/",
        views.gallery_item,
        name="gallery_item",
    ),
    path("<uuid:character_id>/retrain/", views.retrain_page, name="retrain"),
]
