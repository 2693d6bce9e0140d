"""Every route of search, mounted at the site root by chatproject/urls.py."""

from django.urls import path

from search import views

urlpatterns = [
    path("api/search", views.SearchView.as_view(), name="search"),
]
