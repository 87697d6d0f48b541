from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def new(request):
    return render(request, "characters/new.html")


@login_required
def character_list(request):
    return render(request, "characters/list.html")
