from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from webtoon.accounts import views as account_views
from webtoon.jobs import views as job_views

from . import views
from .api import api

handler400 = "webtoon.errors.bad_request"
handler403 = "webtoon.views.permission_denied"
handler404 = "webtoon.views.page_not_found"
handler500 = "webtoon.views.server_error"

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("admin/", admin.site.urls),
    path("accounts/signup/", account_views.signup, name="signup"),
    path("accounts/profile/", account_views.profile, name="profile"),
    path("accounts/tokens/<int:pk>/revoke/", account_views.token_revoke, name="token_revoke"),
    path("accounts/verify/resend/", account_views.verify_email_resend, name="verify_email_resend"),
    path("accounts/verify/<str:token>/", account_views.verify_email, name="verify_email"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", api.urls),
    re_path(r"^api/(?P<rest>.*)$", views.api_not_found),
    path("media/<path:name>", views.media, name="media"),
    path("jobs/", job_views.job_list, name="job_list"),
    path("jobs/<uuid:job_id>/", job_views.job_detail, name="job_detail"),
    path("jobs/<uuid:job_id>/retry/", job_views.job_retry, name="job_retry"),
    path("notifications/", include("webtoon.notifications.urls")),
    path("characters/", include("characters.urls")),
    path("scenes/", include("scenes.urls")),
    path("episodes/", include("episodes.urls")),
]
