"""Who calls the API: wallets signed in with Sign-In with Ethereum (``sessions``) and attesters holding an API key a
campaign's marketer issued (``api_keys``). The tables are in ``models``, registered on the CRM's metadata by
``ledger.crm`` (one metadata, one migration history). No HTTP here: ``api/deps.py`` reads the headers."""
