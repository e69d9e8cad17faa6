from django.urls import path

from portal.dicomnet import views

app_name = "dicomnet"

urlpatterns = [
    path("arrivals/", views.arrivals, name="arrivals"),
    path("studies/<uuid:code>/send/", views.send_study, name="send"),
    path("transfers/<uuid:code>/", views.transfer_detail, name="transfer"),
]
