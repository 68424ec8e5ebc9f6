"""Imports every domain's models, so the metadata and the access registry are complete."""

from gatherly.access import models as access_models
from gatherly.capture import models as capture_models
from gatherly.contact import models as contact_models
from gatherly.core import audit as audit_models
from gatherly.core import changes as change_models
from gatherly.core.db import Base
from gatherly.email import models as email_models
from gatherly.event import models as event_models
from gatherly.journey import models as journey_models
from gatherly.linkedin import models as linkedin_models
from gatherly.org import models as org_models
from gatherly.report import models as report_models
from gatherly.scoring import models as scoring_models
from gatherly.segment import models as segment_models
from gatherly.teams import models as teams_models
from gatherly.web import models as web_models

__all__ = [
    "Base",
    "access_models",
    "audit_models",
    "capture_models",
    "change_models",
    "contact_models",
    "email_models",
    "event_models",
    "journey_models",
    "linkedin_models",
    "org_models",
    "report_models",
    "scoring_models",
    "segment_models",
    "teams_models",
    "web_models",
]
