from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from webtoon.exceptions import DomainError
from webtoon.ui.jobs import job_rows
from webtoon.ui.money import call_price, price_text

from . import queries, services
from .forms import ImageJobForm

JOBS_PER_PAGE = 20


@login_required
def job_list(request):
    form = ImageJobForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.create_image_job(
                request.user, form.cleaned_data["prompt"].strip(), form.cleaned_data["image_size"]
            )
        except DomainError as exc:  # e.g. a per-user limit (429 on the API)
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("작업을 시작했습니다."))
            return redirect("job_list")
    # Newest first, named by character, kind and time, 20 to a page (issue 15).
    jobs = queries.jobs_for(request.user)
    page = Paginator(jobs, JOBS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"form": form, "jobs": job_rows(page.object_list), "page": page}
    context["quick_price"] = price_text(
        call_price("lora", {"image_size": "square_hd"}, "COST_PER_LORA_INFERENCE")
    )
    return render(request, "jobs/job_list.html", context)


@login_required
def job_detail(request, job_id):
    job = queries.job_for(request.user, job_id)
    services.request_refresh(job)
    template = "jobs/job_list.html#job-card" if request.htmx else "jobs/job_detail.html"
    return render(request, template, {"job": job_rows([job])[0]})


@login_required
@require_POST
def job_retry(request, job_id):
    job = queries.job_for(request.user, job_id)
    if job.state == "failed":
        try:
            services.retry_job(job, limited=True)
        except DomainError as exc:
            messages.error(request, str(exc))
        else:
            messages.info(request, _("다시 시도합니다."))
    return redirect("job_list")
