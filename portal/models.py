"""Every domain's models, imported together so the metadata (and Alembic) sees all tables."""

from portal.accounts import models as accounts  # noqa: F401
from portal.alerts import models as alerts  # noqa: F401
from portal.api import models as api  # noqa: F401
from portal.audit import models as audit  # noqa: F401
from portal.awards import models as awards  # noqa: F401
from portal.ledger import models as ledger  # noqa: F401
from portal.metrics import models as metrics  # noqa: F401
from portal.notifications import models as notifications  # noqa: F401
from portal.periods import models as periods  # noqa: F401
from portal.qa import models as qa  # noqa: F401
from portal.scoring import models as scoring  # noqa: F401
from portal.system import models as system  # noqa: F401
