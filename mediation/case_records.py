"""Tables beside the case core (mediation.models): what intake records about personal matters, and how the public
reaches a center (the case QR page names the center and its phone, R29)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from mediation.db import Base, UTCDateTime, utcnow


class CaseMatter(Base):
    """Intake's personal-matter marker: `status` (also Case.personal_status, CPL-I 355) or `inheritance`."""

    __tablename__ = "case_matters"
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    personal_matter: Mapped[str] = mapped_column(String(20))  # mediation.cases.PersonalMatter
    set_by: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CenterContact(Base):
    """The center's public contact: shown on the case page a QR code opens (no personal data)."""

    __tablename__ = "center_contacts"
    center_id: Mapped[int] = mapped_column(ForeignKey("centers.id"), primary_key=True)
    phone: Mapped[str] = mapped_column(String(40), default="")
    hours: Mapped[str] = mapped_column(String(200), default="")
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
