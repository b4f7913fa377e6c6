"""The CRM store: customers and their wallets (``models``), chain-derived rows (``onchain``), dedup
(``repository``) and erasure (``erasure``). Importing the package registers every table on ``Base.metadata``,
so foreign keys between the two model modules always resolve."""

from ledger.auth import models as auth_models  # noqa: F401  (the API's credential tables share Base.metadata)
from ledger.crm.models import Base
from ledger.settlement import outbox_models  # noqa: F401  (the outbox tables share Base.metadata)

__all__ = ["Base"]
