"""The HTTP face of adledger (FastAPI) on ``ledger``: ``api.app.create_app(settings)``, run by ``adledger serve``."""
