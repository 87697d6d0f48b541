from django.urls import path

from . import views

app_name = "scenes"
urlpatterns = [path("", views.index, name="index")]
