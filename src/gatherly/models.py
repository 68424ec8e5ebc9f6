"""Imports every domain's models, so the metadata and the access registry are complete."""

from gatherly.access import models as access_models
from gatherly.contact import models as contact_models
from gatherly.core.db import Base
from gatherly.org import models as org_models

__all__ = ["Base", "access_models", "contact_models", "org_models"]
