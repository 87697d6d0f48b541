from django.urls import path

from . import views

app_name = "characters"
urlpatterns = [
    path("", views.character_list, name="list"),
    path("new/", views.new, name="new"),
    path("new/<uuid:photo_id>/style/", views.style_select, name="style"),
]
