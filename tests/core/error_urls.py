"""The project's URLs plus two plain (non-DRF) views that fail, for test_json_errors.py."""

from django.http import Http404, JsonResponse
from django.urls import path
from django.views.decorators.http import require_POST

from issuer_portal.urls import handler404, handler500, urlpatterns as project_urlpatterns  # noqa: F401


def boom(request):
    raise RuntimeError("an unexpected failure")


def missing(request):
    raise Http404("no such thing")


@require_POST
def post_only(request):
    return JsonResponse({})


urlpatterns = [
    path("webhooks/test-post-only", post_only),
    path("api/v1/test-boom", boom),
    path("sdk/v1/test-missing", missing),
    path("analyst/test-boom", boom),
    *project_urlpatterns,
]
