"""The HTTP face of adledger (FastAPI), built on ``ledger``: coming with the API issue."""
