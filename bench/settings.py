"""Settings for the HTTP benchmarks: the real settings, plus one baseline view (bench/urls.py).

Nothing here changes how the app itself behaves; the app's own URLconf stays free of
benchmark-only routes.
"""

from webtoon.settings import *  # noqa: F403
from webtoon.settings import ALLOWED_HOSTS

ROOT_URLCONF = "bench.urls"
# The in-process measurements use Django's test Client (host "testserver").
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]
