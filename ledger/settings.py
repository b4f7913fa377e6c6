"""Configuration, read once by each entry point from ``ADLEDGER_*`` variables and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# anvil's default mnemonic: its ten accounts are the devnet's well-known, publicly known keys.
DEV_MNEMONIC = "test test test test test test test test test test test junk"


class Settings(BaseSettings):
    """Every knob of adledger, with embedded defaults that run a local devnet."""

    model_config = SettingsConfigDict(env_prefix="ADLEDGER_", extra="ignore")

    chain: str = Field(
        default="anvil",
        description="`eth-tester` (in-process py-evm), `anvil` (spawned from node_modules) or an http(s):// URL.",
    )
    data_dir: Path = Field(default=Path(".adledger"), description="Devnet state, deployment manifest, database.")
    project_root: Path = Field(
        default=Path(__file__).resolve().parent.parent,
        description="Where node_modules/ lives (the anvil binary and solc-js).",
    )
    anvil_port: int = Field(default=0, ge=0, le=65535, description="0 picks a free loopback port.")
    anvil_state: bool = Field(default=True, description="Persist anvil's chain under data_dir with --state.")
    mnemonic: str = Field(default=DEV_MNEMONIC, description="Derives the dev accounts by role (devnets only).")
    confirmations: int = Field(default=0, ge=0, description="Blocks a log must be buried under before use.")
    rpc_timeout: float = Field(
        default=30.0, gt=0, description="Seconds the indexer waits for one JSON-RPC answer before retrying it."
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the CRM and index database; empty means the SQLite file data_dir/adledger.db. "
        "A SQLite database keeps the engagement outbox in a second file beside it, <name>-outbox<suffix>. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/db.",
    )
    api_domain: str = Field(
        default="localhost:8000",
        description="The authority (host[:port]) clients reach the API at; Sign-In with Ethereum messages must name "
        "it, so a message signed for another site cannot sign in here.",
    )
    session_ttl: int = Field(
        default=3600, ge=60, le=86_400, description="Seconds a wallet's session token lasts after sign-in."
    )
    siwe_nonce_ttl: int = Field(default=600, ge=30, description="Seconds a sign-in nonce stays usable once issued.")
    api_max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body the API reads; larger ones get 413."
    )
    # rate limits: token buckets, refilled at the rate (requests per second) up to the burst; past it, 429
    rate_attester: float = Field(
        default=50.0, gt=0, description="Requests per second per attester API key (ADLEDGER_RATE_ATTESTER)."
    )
    burst_attester: int = Field(
        default=100, ge=1, description="Requests an attester API key may send at once (ADLEDGER_BURST_ATTESTER)."
    )
    rate_wallet: float = Field(
        default=10.0, gt=0, description="Requests per second per signed-in wallet (ADLEDGER_RATE_WALLET)."
    )
    burst_wallet: int = Field(
        default=30, ge=1, description="Requests a signed-in wallet may send at once (ADLEDGER_BURST_WALLET)."
    )
    rate_sign_in: float = Field(
        default=5.0,
        gt=0,
        description="Requests per second per client IP to POST /v1/auth/nonce and /v1/auth/siwe together "
        "(ADLEDGER_RATE_SIGN_IN).",
    )
    burst_sign_in: int = Field(
        default=20, ge=1, description="Sign-in requests a client IP may send at once (ADLEDGER_BURST_SIGN_IN)."
    )
    rate_public: float = Field(
        default=20.0,
        gt=0,
        description="Requests per second per client IP to the public (auditor) reads (ADLEDGER_RATE_PUBLIC).",
    )
    burst_public: int = Field(
        default=60, ge=1, description="Public reads a client IP may send at once (ADLEDGER_BURST_PUBLIC)."
    )

    @model_validator(mode="after")
    def _default_database_url(self) -> Settings:
        """The default follows data_dir, which is itself configurable, so it is derived after validation."""
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'adledger.db'}"
        return self

    @property
    def deployment_file(self) -> Path:
        """The manifest `adledger deploy` writes and every other part reads."""
        return self.data_dir / "deployment.json"
