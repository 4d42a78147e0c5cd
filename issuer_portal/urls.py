from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.core import views as core_views

admin.site.site_header = _("Issuer 3-D Secure back office")
admin.site.site_title = _("Issuer 3DS admin")
admin.site.index_title = _("Operations")
# The admin's "View site" link leads to the analysts' workspace.
admin.site.site_url = "/analyst/"

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file: the page's CSP allows no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("apps.cards.urls")),
    path("api/v1/", include("apps.threeds.api_urls")),
    path("api/v1/", include("apps.devices.api_urls")),
    path("sdk/v1/", include("apps.devices.sdk_urls")),
    path("sdk/v1/", include("apps.threeds.sdk_urls")),
    path("webhooks/", include("apps.sms.urls")),
    path("3ds/v2/", include("apps.threeds.urls")),
    path("analyst/", include("apps.analyst.urls")),
    path("demo/", include("apps.demo.urls")),  # the demo issuer app; 404 without DEBUG
    # Django's set_language: a staff user's choice of English or Japanese, kept in a cookie.
    path("i18n/", include("django.conf.urls.i18n")),
]

handler404 = "apps.core.views.not_found"
handler500 = "apps.core.views.server_error"
