from django.urls import path

from . import views

app_name = "episodes"
urlpatterns = [
    path("", views.episode_list, name="list"),
    path("new/", views.episode_create, name="create"),
    path("<uuid:episode_id>/", views.editor, name="editor"),
    path("<uuid:episode_id>/update/", views.episode_update, name="update"),
    path("<uuid:episode_id>/delete/", views.episode_delete, name="delete"),
    path("<uuid:episode_id>/panels/generate/", views.panel_generate, name="panel_generate"),
    path("<uuid:episode_id>/panels/upload/", views.panel_upload, name="panel_upload"),
    path("<uuid:episode_id>/panels/from-scene/", views.panel_from_scene, name="panel_from_scene"),
    path("<uuid:episode_id>/export/", views.export_create, name="export"),
    path("<uuid:episode_id>/export/status/", views.export_status, name="export_status"),
    path("panel/<uuid:panel_id>/image/", views.panel_image, name="panel_image"),
    path("panel/<uuid:panel_id>/move/", views.panel_move, name="panel_move"),
    path("panel/<uuid:panel_id>/height/", views.panel_height, name="panel_height"),
    path("panel/<uuid:panel_id>/delete/", views.panel_delete, name="panel_delete"),
    path("panel/<uuid:panel_id>/preview.png", views.panel_preview, name="panel_preview"),
    path("panel/<uuid:panel_id>/bubbles/", views.bubble_add, name="bubble_add"),
    path("bubble/<uuid:bubble_id>/", views.bubble_update, name="bubble_update"),
    path("bubble/<uuid:bubble_id>/delete/", views.bubble_delete, name="bubble_delete"),
    path("export/<uuid:export_id>/", views.export_item, name="export_item"),
    path("export/<uuid:export_id>/download/<str:what>/", views.export_download,
         name="export_download"),
    path("export/<uuid:export_id>/image/<int:number>/", views.export_image, name="export_image"),
    path("scene-picker/", views.scene_picker, name="scene_picker"),
    path("add-scene/<uuid:scene_id>/", views.scene_add, name="scene_add"),
]
