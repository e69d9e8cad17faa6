"""The one place that decides who may see what: a staff member's practice and role, or a share.

Every view that touches patient data fetches through a Scope. Objects outside it are a 404
(never a 403), and the denial is audited.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest

import audit
from audit.models import Action, Outcome
from portal.members import member_of
from portal.models import (
    Attachment,
    Instance,
    Patient,
    Role,
    Series,
    StaffMember,
    Study,
)
from portal.rows import fetch_row, fetch_row_joined


@dataclass(frozen=True)
class ShareFacts:
    """What a share covers besides its study; fixed when the link is issued."""

    whole_study: bool
    series_pks: frozenset[int]
    attachment_pks: frozenset[int]


_share_facts: OrderedDict[UUID, ShareFacts] = OrderedDict()
_share_facts_lock = threading.Lock()
_MAX_SHARE_FACTS = 4096


def share_facts(share: Any) -> ShareFacts:
    """Return the share's chosen series and attachments, read once per process.

    issue_link sets them inside the transaction that creates the link; later they can only
    shrink (a chosen item shredded), and whole_study never changes, so they may be kept;
    keys are codes, never pks. Expiry, revocation and lock
    live on the link row, which sharing.session re-reads on every request.
    """
    with _share_facts_lock:
        facts = _share_facts.get(share.code)
        if facts is not None:
            _share_facts.move_to_end(share.code)
            return facts
    series = frozenset(share.series.values_list("pk", flat=True))
    attachments = frozenset(share.attachments.values_list("pk", flat=True))
    facts = ShareFacts(share.whole_study, series, attachments)
    with _share_facts_lock:
        _share_facts[share.code] = facts
        while len(_share_facts) > _MAX_SHARE_FACTS:
            _share_facts.popitem(last=False)
    return facts


@dataclass(frozen=True)
class SeriesOwner:
    """Who a series belongs to, as stored now: enough to decide access without the ORM."""

    pk: int
    study_id: int
    study_practice_id: int
    patient_id: int
    patient_practice_id: int


@functools.cache
def _owner_sql(vendor: str) -> str:
    """Return the owner query for a database vendor; names come from model metadata only."""
    q = connection.ops.quote_name

    def col(model: Any, name: str) -> str:
        return q(model._meta.get_field(name).column)

    series, study, patient = (q(m._meta.db_table) for m in (Series, Study, Patient))
    se_study, st_patient = col(Series, "study"), col(Study, "patient")
    return (
        f"SELECT se.{col(Series, 'id')}, se.{se_study}, st.{col(Study, 'practice')}, "  # noqa: S608
        f"st.{st_patient}, pa.{col(Patient, 'practice')} "
        f"FROM {series} se "
        f"JOIN {study} st ON st.{col(Study, 'id')} = se.{se_study} "
        f"JOIN {patient} pa ON pa.{col(Patient, 'id')} = st.{st_patient} "
        f"WHERE se.{col(Series, 'code')} = %s"
    )


def series_owner(code: UUID | str) -> SeriesOwner | None:
    """Return the owners of a series in one indexed query, or None if it does not exist.

    Building the equivalent ORM query costs more than rendering a warm slice; the row is read
    fresh on every call, so a shredded series is never decided from memory.
    """
    try:
        value = Series._meta.get_field("code").get_db_prep_value(code, connection)
    except ValidationError:
        return None
    with connection.cursor() as cursor:
        cursor.execute(_owner_sql(connection.vendor), [value])
        row = cursor.fetchone()
    return SeriesOwner(*row) if row is not None else None


def fetch_row_and_series_owner(
    model: Any, field_name: str, value: Any, series_code: UUID | str
) -> tuple[Any, SeriesOwner | None]:
    """Return a row (as rows.fetch_row) and a series' owners, in one database round trip."""
    try:
        code = Series._meta.get_field("code").get_db_prep_value(series_code, connection)
    except ValidationError:
        return fetch_row(model, field_name, value), None
    row, owner = fetch_row_joined(
        model, field_name, value, _owner_sql(connection.vendor), code, width=5
    )
    return row, (SeriesOwner(*owner) if owner is not None else None)


class Scope:
    """What one requester may reach; built per request by scope_for()."""

    def __init__(self, practice: Any = None, staff: StaffMember | None = None, share: Any = None):
        self._practice = practice
        self.staff = staff
        self.share = share  # sharing.models.ShareLink

    def __repr__(self) -> str:
        who = f"share={self.share.pk}" if self.share is not None else f"staff={self.staff.pk}"
        return f"Scope({who})"

    @property
    def practice(self) -> Any:
        """The practice; a share's is loaded only when something needs more than its id."""
        if self._practice is None and self.share is not None:
            self._practice = self.share.practice
        return self._practice

    @property
    def practice_id(self) -> int:
        if self._practice is not None:
            return self._practice.pk
        return self.share.practice_id

    @property
    def is_staff(self) -> bool:
        return self.staff is not None

    # -- querysets ------------------------------------------------------------------
    def patients(self) -> QuerySet[Patient]:
        qs = Patient.objects.filter(practice_id=self.practice_id)
        if self.share is not None:
            return qs.filter(pk=self.share.patient_id)
        qs = qs.filter(deidentified_copy=False)  # a share's copy is never staff's record
        if self.staff.role == Role.HYGIENIST and self.practice.hygienists_see_assigned_only:
            qs = qs.filter(assigned_staff=self.staff.user)
        return qs

    def studies(self) -> QuerySet[Study]:
        qs = Study.objects.filter(practice_id=self.practice_id, patient__in=self.patients())
        if self.share is not None:
            qs = qs.filter(pk=self.share.study_id)
        return qs

    def series(self) -> QuerySet[Series]:
        qs = Series.objects.filter(study__in=self.studies())
        if self.share is not None:
            facts = share_facts(self.share)
            if not facts.whole_study:
                qs = qs.filter(pk__in=facts.series_pks)
        return qs

    def instances(self) -> QuerySet[Instance]:
        return Instance.objects.filter(series__in=self.series())

    def attachments(self) -> QuerySet[Attachment]:
        qs = Attachment.objects.filter(practice_id=self.practice_id, patient__in=self.patients())
        if self.share is not None:
            facts = share_facts(self.share)
            if facts.whole_study:
                qs = qs.filter(Q(study_id=self.share.study_id))
            else:
                qs = qs.filter(pk__in=facts.attachment_pks)
        return qs

    def allows_series(self, owner: SeriesOwner) -> bool:
        """Decide what series().filter(pk=owner.pk).exists() would, mostly without a query."""
        practice_id = self.practice_id
        if owner.study_practice_id != practice_id or owner.patient_practice_id != practice_id:
            return False
        if self.share is not None:
            facts = share_facts(self.share)
            return (
                owner.patient_id == self.share.patient_id
                and owner.study_id == self.share.study_id
                and (facts.whole_study or owner.pk in facts.series_pks)
            )
        if self.staff.role == Role.HYGIENIST and self.practice.hygienists_see_assigned_only:
            return self.patients().filter(pk=owner.patient_id).exists()
        return True

    # -- permissions ------------------------------------------------------------------
    @property
    def can_view_pixels(self) -> bool:
        if self.share is not None:
            return True
        if self.staff.role == Role.FRONT_DESK:
            return self.practice.front_desk_views_images
        return True

    @property
    def can_download(self) -> bool:
        if self.share is not None:
            left = self.share.downloads_left
            return self.share.allow_download and (left is None or left > 0)
        return self.can_view_pixels

    @property
    def can_save_pictures(self) -> bool:
        """One rendered image saved from the viewer: what a screenshot gives, so a link that
        allows downloads allows it even once its downloads are used up (never counted)."""
        if self.share is not None:
            return self.share.allow_download
        return self.can_view_pixels

    @property
    def can_manage_practice(self) -> bool:
        """Practice admins manage staff and the practice's settings."""
        return self.share is None and self.staff.role == Role.ADMIN

    @property
    def can_edit_patient(self) -> bool:
        """Staff who see a patient may correct the birth date a patient link asks for."""
        return self.share is None

    @property
    def can_share(self) -> bool:
        """Every staff role may issue, revoke and extend links within its scope."""
        return self.share is None

    @property
    def can_upload(self) -> bool:
        """Every staff role may upload studies into its practice."""
        return self.share is None

    @property
    def shows_patient_name(self) -> bool:
        """Staff, and recipients who passed verification (a Scope exists only after it),
        except the recipient of a de-identified copy: that copy names no one."""
        return self.share is None or getattr(self.share, "source_patient_id", None) is None

    def audit_kwargs(self) -> dict[str, Any]:
        if self.share is not None:
            return {"share": self.share}
        return {"user": self.staff.user, "practice": self.practice}


def staff_member(request: HttpRequest) -> StaffMember | None:
    """Return the signed-in, second-factor-verified staff member, or None."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if not (hasattr(user, "is_verified") and user.is_verified()):
        return None
    return member_of(user)


class ShareResolver(Protocol):
    """Return the verified share a request carries, or None; with series_code, also the
    owners of that series (read in the same round trip), else None in their place."""

    def __call__(
        self, request: HttpRequest, series_code: UUID | None = None
    ) -> tuple[Any, SeriesOwner | None]: ...


def _no_shares(request: HttpRequest, series_code: UUID | None = None) -> tuple[None, None]:
    return None, None


_share_resolver: ShareResolver = _no_shares


def register_share_resolver(resolver: ShareResolver) -> None:
    """Let the sharing app say which verified share, if any, a request carries.

    The permission layer sits below sharing and must not import it; sharing registers
    its session check here when the app is ready.
    """
    global _share_resolver
    _share_resolver = resolver


def scope_for(request: HttpRequest) -> Scope | None:
    """Return the requester's scope: a verified share session first, else verified staff."""
    share, _ = _share_resolver(request)
    if share is not None:
        return Scope(share=share)
    member = staff_member(request)
    if member is not None:
        return Scope(practice=member.practice, staff=member)
    return None


def scope_and_series_owner(
    request: HttpRequest, code: UUID
) -> tuple[Scope | None, SeriesOwner | None]:
    """Return the requester's scope and a series' owners, deciding nothing yet.

    A recipient's share and the series are read in one round trip (the warm slice path).
    """
    share, owner = _share_resolver(request, series_code=code)
    if share is not None:
        return Scope(share=share), owner
    scope = scope_for(request)
    return scope, (series_owner(code) if scope is not None else None)


def deny(
    request: HttpRequest,
    scope: Scope | None,
    model: str,
    *,
    reason: str = "",
    share: Any = None,
) -> Http404:
    """Audit a denied request and return the 404 to raise.

    The event names the share when one is known, else whoever the scope belongs to.
    """
    if share is not None:
        kwargs: dict[str, Any] = {"share": share}
    else:
        kwargs = scope.audit_kwargs() if scope is not None else {}
    detail = {
        "model": model,
        "path_kind": request.resolver_match.url_name if request.resolver_match else "",
    }
    if reason:
        detail["reason"] = reason
    audit.record(
        Action.ACCESS_DENIED, request=request, outcome=Outcome.DENIED, detail=detail, **kwargs
    )
    return Http404()


def fetch_or_404(request: HttpRequest, scope: Scope | None, queryset: QuerySet, **lookup):
    """Return the object from the scoped queryset, or audit the denial and raise 404.

    A lookup value that cannot name a row (a code that is not a UUID) finds nothing.
    """
    try:
        obj = queryset.filter(**lookup).first() if scope is not None else None
    except (ValidationError, ValueError):
        obj = None
    if obj is None:
        raise deny(request, scope, queryset.model.__name__.lower())
    return obj


def series_owner_or_404(
    request: HttpRequest,
    scope: Scope | None,
    code: UUID,
    owner: SeriesOwner | None = None,
) -> SeriesOwner:
    """Return the owners of a series the scope may see, or audit the denial and raise 404.

    `owner` is the row when the caller already read it (scope_and_series_owner).
    """
    if owner is None and scope is not None:
        owner = series_owner(code)
    if owner is None or scope is None or not scope.allows_series(owner):
        raise deny(request, scope, "series")
    return owner
