"""The ledger service: its core modules here, collection, imports, refunds, reporting and
write-offs below.

The ledger's schema is its core tables plus those its subpackages add; importing any part of
the ledger loads them all here, so `models.metadata` is complete for Alembic, the test
databases and `create_app` alike. The core itself never imports a subpackage (issue 14).
"""

from services.ledger.collection import models as _collection_models  # noqa: F401  (tables)
from services.ledger.imports import models as _import_models  # noqa: F401  (tables)
from services.ledger.refunds import models as _refund_models  # noqa: F401  (tables)
from services.ledger.reporting import models as _reporting_models  # noqa: F401  (indexes)
from services.ledger.writeoffs import models as _writeoff_models  # noqa: F401  (tables)
