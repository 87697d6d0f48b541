from django.urls import path

from . import views

app_name = "scenes"
urlpatterns = [
    path("", views.index, name="index"),
    path("one/", views.generate_one, name="generate_one"),
    path("two/", views.generate_two, name="generate_two"),
    path("<uuid:scene_id>/", views.scene_item, name="scene"),
    path("<uuid:scene_id>/regenerate/", views.regenerate, name="regenerate"),
    path("<uuid:scene_id>/compare/", views.compare, name="compare"),
    path("<uuid:scene_id>/delete/", views.delete, name="delete"),
]
