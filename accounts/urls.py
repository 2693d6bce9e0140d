from django.urls import re_path

from accounts import views

urlpatterns = [
    re_path(r"^register/?$", views.RegisterView.as_view(), name="auth-register"),
    re_path(r"^login/?$", views.LoginView.as_view(), name="auth-login"),
    re_path(r"^refresh/?$", views.RefreshView.as_view(), name="auth-refresh"),
    re_path(r"^logout/?$", views.LogoutView.as_view(), name="auth-logout"),
    re_path(r"^me/?$", views.MeView.as_view(), name="auth-me"),
    re_path(r"^password/?$", views.PasswordView.as_view(), name="auth-password"),
    re_path(r"^ws-ticket/?$", views.WsTicketView.as_view(), name="auth-ws-ticket"),
    re_path(r"^blocks/?$", views.BlocksView.as_view(), name="auth-blocks"),
]

# Mounted at /api/users (chatproject/urls.py): the people directory.
people_patterns = [
    re_path(r"^/?$", views.PeopleView.as_view(), name="people"),
    re_path(r"^/(?P<user_id>[^/]+)/?$", views.PersonView.as_view(), name="person"),
    re_path(r"^/(?P<user_id>[^/]+)/block/?$", views.BlockView.as_view(), name="person-block"),
]
