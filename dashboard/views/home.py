from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from dashboard import charts, queries
from dashboard.access import staff_required
from dashboard.views.common import render_page


@staff_required
def home(request: HttpRequest) -> HttpResponse:
    daily = charts.daily_chart(queries.daily_counts(14))
    rates = charts.rate_chart(queries.device_delivery_rates(14))
    return render_page(
        request, "dashboard/home.html", {"daily": daily, "rates": rates}, section="home"
    )
