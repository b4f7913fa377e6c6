"""Bodies of /v1/auth: a nonce with what the message must say, a signed message, and the session it buys."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import EXAMPLE_ADDRESS

EXAMPLE_MESSAGE = (
    "localhost:8000 wants you to sign in with your Ethereum account:\n"
    f"{EXAMPLE_ADDRESS}\n\nSign in to adledger.\n\nURI: http://localhost:8000/v1/auth/siwe\nVersion: 1\n"
    "Chain ID: 31337\nNonce: 32891756aBcDeFgHi\nIssued At: 2026-11-26T10:00:00.000Z"
)


class NonceOut(BaseModel):
    """A single-use nonce, and the fields an EIP-4361 message must carry to sign in here."""

    nonce: str = Field(
        description="Put it in the message's `Nonce:` line; it works once.", examples=["32891756aBcDeFgHi"]
    )
    expires_at: datetime = Field(description="Sign in before this (RFC 3339).")
    domain: str = Field(description="The message's domain (first line).", examples=["localhost:8000"])
    chain_id: int = Field(description="The message's `Chain ID:`: the deployment's chain.", examples=[31337])
    version: Literal["1"] = "1"


class SiweIn(BaseModel):
    """An EIP-4361 message, exactly as signed, and its EIP-191 (personal_sign) signature."""

    model_config = ConfigDict(strict=True, extra="forbid")

    message: str = Field(
        description="The message's exact text (LF line ends, no trailing newline).", examples=[EXAMPLE_MESSAGE]
    )
    signature: str = Field(description="65 bytes as hex (0x optional).", examples=["0x" + "ab" * 65])


class SessionOut(BaseModel):
    """A session: send ``Authorization: Bearer <token>`` until ``expires_at``. The token is shown only here."""

    token: str = Field(examples=["adls_Q2hhbmdlIG1lIHRvIGEgcmVhbCB0b2tlbiBwbGVhc2U"])
    token_type: Literal["Bearer"] = "Bearer"
    address: str = Field(description="The wallet that signed in, EIP-55.", examples=[EXAMPLE_ADDRESS])
    expires_at: datetime = Field(description="The token stops working at this time (RFC 3339).")
