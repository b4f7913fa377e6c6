"""The deployed contract suite: the deployment manifest every part reads, and the bound contracts.

``adledger deploy`` writes the manifest (chain id, addresses, deploy block, artifact hashes); everything else
loads it with ``Suite.load``, which refuses a manifest from another chain or one whose contracts are gone (a
devnet restarted without its state).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from web3.contract import Contract
from web3.types import TxReceipt

from ledger import errors, typed_data
from ledger.chain import Chain
from ledger.contracts import artifact, bind, deploy, events, read, transact
from ledger.model import ACTION_COUNT, DEFAULT_PURPOSES, Action, CampaignStatus

TOKEN_NAME = "adledger Reward"
TOKEN_SYMBOL = "ADR"
TOKEN_DECIMALS = 18
DEVNET_SUPPLY = 1_000_000_000 * 10**TOKEN_DECIMALS


@dataclass(frozen=True)
class Deployment:
    """Where the suite lives on one chain, and which compiled artifacts it was deployed from."""

    chain_id: int
    token: str
    registry: str
    escrow: str
    deploy_block: int
    artifact_hashes: dict[str, str]
    deployed_at: int = field(default_factory=lambda: int(time.time()))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)  # atomic: a reader never sees half a manifest

    @classmethod
    def load(cls, path: Path) -> Deployment:
        if not path.is_file():
            raise errors.DeploymentNotFound(f"no deployment manifest at {path}")
        return cls(**json.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class CampaignTerms:
    """CampaignEscrow.CampaignTerms with Python defaults: every action offered, each needing its usual consent.

    ``rewards`` maps actions to base units; an action absent from ``purposes`` is not offered.
    """

    token: str
    brand: str
    starts_at: int
    ends_at: int
    rewards: dict[Action, int]
    purposes: dict[Action, int] = field(default_factory=lambda: {a: int(p) for a, p in DEFAULT_PURPOSES.items()})
    lifetime_caps: dict[Action, int] = field(
        default_factory=lambda: {Action.INSTALL: 1, Action.LOCATION_OPT_IN: 1, Action.SUBSCRIBE: 1}
    )
    daily_caps: dict[Action, int] = field(default_factory=lambda: {Action.DAILY_OPEN: 1})

    def as_abi(self) -> tuple[Any, ...]:
        def row(values: dict[Action, int]) -> list[int]:
            return [int(values.get(Action(a), 0)) for a in range(ACTION_COUNT)]

        return (
            to_checksum_address(self.token),
            to_checksum_address(self.brand),
            self.starts_at,
            self.ends_at,
            row(self.rewards),
            row(self.purposes),
            row(self.lifetime_caps),
            row(self.daily_caps),
        )


@dataclass(frozen=True)
class CampaignState:
    marketer: str
    status: CampaignStatus
    budget: int
    owed: int


class Suite:
    """The three deployed contracts bound on a connected chain, with the EIP-712 domains that sign for them."""

    def __init__(self, chain: Chain, deployment: Deployment) -> None:
        self.chain = chain
        self.deployment = deployment
        self.token: Contract = bind(chain, "RewardToken", deployment.token)
        self.registry: Contract = bind(chain, "ConsentRegistry", deployment.registry)
        self.escrow: Contract = bind(chain, "CampaignEscrow", deployment.escrow)
        self.registry_domain = typed_data.Domain(typed_data.REGISTRY_DOMAIN_NAME, chain.chain_id, self.registry.address)
        self.escrow_domain = typed_data.Domain(typed_data.ESCROW_DOMAIN_NAME, chain.chain_id, self.escrow.address)

    # -- deployment -----------------------------------------------------------------------------------------

    @classmethod
    def deploy(cls, chain: Chain, deployer: LocalAccount | None = None, supply: int = DEVNET_SUPPLY) -> Suite:
        """Deploys RewardToken (whole supply to the deployer), ConsentRegistry and CampaignEscrow."""
        deployer = deployer or chain.accounts.deployer
        token, receipt = deploy(chain, deployer, "RewardToken", TOKEN_NAME, TOKEN_SYMBOL, deployer.address, supply)
        registry, _ = deploy(chain, deployer, "ConsentRegistry")
        escrow, _ = deploy(chain, deployer, "CampaignEscrow", registry.address)
        deployment = Deployment(
            chain_id=chain.chain_id,
            token=token.address,
            registry=registry.address,
            escrow=escrow.address,
            deploy_block=int(receipt["blockNumber"]),
            artifact_hashes={
                name: artifact(name)["sourceHash"] for name in ("RewardToken", "ConsentRegistry", "CampaignEscrow")
            },
        )
        return cls(chain, deployment)

    @classmethod
    def load(cls, chain: Chain, manifest: Path) -> Suite:
        """The suite from a manifest, checked against the connected chain."""
        deployment = Deployment.load(manifest)
        if deployment.chain_id != chain.chain_id:
            raise errors.DeploymentNotFound(
                f"{manifest} is for chain {deployment.chain_id}, connected to chain {chain.chain_id}"
            )
        for address in (deployment.token, deployment.registry, deployment.escrow):
            if not chain.w3.eth.get_code(to_checksum_address(address)):
                raise errors.DeploymentNotFound(
                    f"no contract at {address} on chain {chain.chain_id} (was the devnet reset?)"
                )
        return cls(chain, deployment)

    def is_current(self) -> bool:
        """Whether the suite was deployed from the artifacts in this tree (else the contracts have changed)."""
        return all(artifact(name)["sourceHash"] == digest for name, digest in self.deployment.artifact_hashes.items())

    # -- tokens ---------------------------------------------------------------------------------------------

    def balance(self, address: str) -> int:
        return int(self.token.functions.balanceOf(to_checksum_address(address)).call())

    def transfer(self, sender: LocalAccount, to: str, amount: int) -> TxReceipt:
        return transact(self.chain, sender, self.token.functions.transfer(to_checksum_address(to), amount))

    def permit_signature(self, owner: LocalAccount, spender: str, value: int, deadline: int) -> bytes:
        """An EIP-2612 permit signed by ``owner`` for this suite's token."""
        nonce = int(self.token.functions.nonces(owner.address).call())
        domain = typed_data.Domain(str(self.token.functions.name().call()), self.chain.chain_id, self.token.address)
        message = typed_data.permit_message(owner.address, to_checksum_address(spender), value, nonce, deadline)
        return typed_data.sign(owner, domain, "Permit", message)

    # -- campaigns ------------------------------------------------------------------------------------------

    def create_campaign(
        self,
        marketer: LocalAccount,
        terms: CampaignTerms,
        budget: int,
        attesters: Sequence[str],
        deadline: int | None = None,
    ) -> tuple[int, TxReceipt]:
        """Creates and funds a campaign in one transaction, the budget pulled by a permit the marketer signs."""
        deadline = deadline or self.chain.latest_timestamp() + 3600
        v, r, s = typed_data.split_signature(self.permit_signature(marketer, self.escrow.address, budget, deadline))
        call = self.escrow.functions.createCampaignWithPermit(
            terms.as_abi(), [to_checksum_address(a) for a in attesters], budget, deadline, v, r, s
        )
        receipt = transact(self.chain, marketer, call)
        (event,) = events(self.escrow, "CampaignCreated", receipt)
        return int(event["campaignId"]), receipt

    def campaign_state(self, campaign_id: int) -> CampaignState:
        marketer, status, budget, owed = read(self.escrow.functions.campaignState(campaign_id))
        return CampaignState(to_checksum_address(marketer), CampaignStatus(status), int(budget), int(owed))

    def accrued(self, campaign_id: int, consumer: str) -> int:
        return int(read(self.escrow.functions.accountOf(campaign_id, to_checksum_address(consumer)))[0])

    # -- signed actions, relayed ----------------------------------------------------------------------------

    def sign_grant(self, consumer: LocalAccount, brand: str, purposes: int, expires_at: int, deadline: int) -> bytes:
        nonce = int(self.registry.functions.nonces(consumer.address).call())
        message = typed_data.grant_message(
            consumer.address, to_checksum_address(brand), purposes, expires_at, nonce, deadline
        )
        return typed_data.sign(consumer, self.registry_domain, "Grant", message)

    def sign_revoke(self, consumer: LocalAccount, brand: str, purposes: int, deadline: int) -> bytes:
        nonce = int(self.registry.functions.nonces(consumer.address).call())
        message = typed_data.revoke_message(consumer.address, to_checksum_address(brand), purposes, nonce, deadline)
        return typed_data.sign(consumer, self.registry_domain, "Revoke", message)

    def sign_claim(self, consumer: LocalAccount, campaign_ids: list[int], to: str, deadline: int) -> bytes:
        nonce = int(self.escrow.functions.nonces(consumer.address).call())
        message = typed_data.claim_message(consumer.address, campaign_ids, to_checksum_address(to), nonce, deadline)
        return typed_data.sign(consumer, self.escrow_domain, "Claim", message)

    def sign_settlement(self, attester: LocalAccount, campaign_id: int, batch: bytes, deadline: int) -> bytes:
        nonce = int(self.escrow.functions.nonces(attester.address).call())
        message = typed_data.settlement_message(attester.address, campaign_id, batch, nonce, deadline)
        return typed_data.sign(attester, self.escrow_domain, "Settlement", message)
