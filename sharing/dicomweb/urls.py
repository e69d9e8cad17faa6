from django.urls import path

from sharing.dicomweb import views

app_name = "dicomweb"

S = "studies/<str:study>"
SE = S + "/series/<str:series>"
I = SE + "/instances/<str:instance>"  # noqa: E741

urlpatterns = [
    path("studies", views.search_studies, name="studies"),
    path("series", views.search_series, name="all-series"),
    path("instances", views.search_instances, name="all-instances"),
    path(S, views.retrieve, name="study"),
    path(S + "/metadata", views.retrieve_metadata, name="study-metadata"),
    path(S + "/series", views.search_series, name="series"),
    path(S + "/instances", views.search_instances, name="study-instances"),
    path(SE, views.retrieve, name="series-retrieve"),
    path(SE + "/metadata", views.retrieve_metadata, name="series-metadata"),
    path(SE + "/instances", views.search_instances, name="instances"),
    path(I, views.retrieve, name="instance"),
    path(I + "/metadata", views.retrieve_metadata, name="instance-metadata"),
    path(I + "/rendered", views.retrieve_rendered, name="instance-rendered"),
    path(I + "/frames/<str:numbers>", views.retrieve_frames, name="frames"),
    path(I + "/frames/<str:numbers>/rendered", views.retrieve_rendered, name="frames-rendered"),
]
