"""adledger's library: chain access, contracts, settlement, indexer, CRM, attribution and audit.

Everything that is not HTTP (``api/``) or a terminal (``wallet/``, ``scripts/``) lives here, and nothing here
imports those layers.
"""
