"""CampaignEscrow.settle and settleBySig: who may settle (attesters of a live, known campaign), and the signed
path a relayer sends for an attester."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from web3.types import TxReceipt

from ledger import typed_data
from ledger.contracts import transact
from ledger.errors import (
    EscrowCampaignPaused,
    EscrowExpiredSignature,
    EscrowInvalidSigner,
    EscrowNotAttester,
    EscrowUnknownCampaign,
)
from ledger.model import Action
from ledger.settlement.batch import encode_batch
from ledger.suite import Suite
from tests.contracts.helpers import REWARDS, batch_settled, reverts, settle_raw
from tests.contracts.signed_behavior import SignedAction, SignedActionBehavior

# --------------------------------------------------------------------------------------------------------
# who may settle
# --------------------------------------------------------------------------------------------------------


class TestSettleRefusals:
    def test_settle_reverts_on_a_paused_campaign(self, suite, campaigns, campaign_id, consented, marketer):
        transact(suite.chain, marketer, suite.escrow.functions.pause(campaign_id))
        with reverts(EscrowCampaignPaused, campaign_id=campaign_id):
            campaigns.settle(campaign_id, [campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)])

    def test_settle_reverts_for_an_account_that_is_not_an_attester(self, campaigns, campaign_id, consented, accounts):
        outsider = accounts.consumers[5]
        with reverts(EscrowNotAttester, campaign_id=campaign_id, caller=outsider.address):
            campaigns.settle(
                campaign_id, [campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)], attester=outsider
            )

    def test_settle_reverts_for_an_attester_of_another_campaign(self, campaigns, consented, accounts):
        other_attester = accounts.consumers[5]
        campaigns.create(attesters=[other_attester.address])
        campaign_id = campaigns.create()
        with reverts(EscrowNotAttester, campaign_id=campaign_id, caller=other_attester.address):
            campaigns.settle(
                campaign_id,
                [campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)],
                attester=other_attester,
            )

    def test_settle_reverts_for_a_removed_attester(self, suite, campaigns, campaign_id, consented, marketer, attester):
        transact(suite.chain, marketer, suite.escrow.functions.removeAttester(campaign_id, attester.address))
        with reverts(EscrowNotAttester, campaign_id=campaign_id, caller=attester.address):
            campaigns.settle(campaign_id, [campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)])

    def test_a_settle_sent_with_its_own_gas_limit_still_reverts_with_the_named_error(
        self, suite, campaigns, campaign_id, consented, marketer, attester
    ):
        """No estimate stops it first: the transaction is mined and fails, and the replayed revert is named."""
        transact(suite.chain, marketer, suite.escrow.functions.pause(campaign_id))
        batch = encode_batch([campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)])
        with reverts(EscrowCampaignPaused, campaign_id=campaign_id):
            transact(suite.chain, attester, suite.escrow.functions.settle(campaign_id, batch), gas=1_000_000)

    def test_settle_reverts_on_an_unknown_campaign(self, suite, campaigns, consented, attester):
        batch = encode_batch([campaigns.engagement(99, consented.address, Action.AD_VIEW)])
        with reverts(EscrowUnknownCampaign, campaign_id=99):
            settle_raw(suite, attester, 99, batch)


# --------------------------------------------------------------------------------------------------------
# settleBySig
# --------------------------------------------------------------------------------------------------------


def escrow_nonce(suite: Suite, account: str) -> int:
    return int(suite.escrow.functions.nonces(account).call())


def relay_settlement(
    suite: Suite, relayer: LocalAccount, campaign_id: int, batch: bytes, attester: str, deadline: int, signature: bytes
) -> TxReceipt:
    call = suite.escrow.functions.settleBySig(campaign_id, batch, attester, deadline, signature)
    return transact(suite.chain, relayer, call)


class TestSettleBySig:
    def test_settle_by_sig_relayed_by_another_account_settles_for_the_attester(
        self, suite, campaigns, campaign_id, consented, attester, relayer
    ):
        batch = encode_batch([campaigns.engagement(campaign_id, consented.address, Action.AD_CLICK)])
        deadline = suite.chain.latest_timestamp() + 3600
        signature = suite.sign_settlement(attester, campaign_id, batch, deadline)
        attester_eth = suite.chain.balance(attester.address)
        receipt = relay_settlement(suite, relayer, campaign_id, batch, attester.address, deadline, signature)
        assert batch_settled(suite, receipt)["attester"] == attester.address
        assert suite.accrued(campaign_id, consented.address) == REWARDS[Action.AD_CLICK]
        assert suite.chain.balance(attester.address) == attester_eth
        assert escrow_nonce(suite, attester.address) == 1

    def test_settle_by_sig_reverts_when_the_relayer_changes_the_batch(
        self, suite, campaigns, campaign_id, consented, attester, relayer
    ):
        signed = encode_batch([campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)])
        changed = encode_batch([campaigns.engagement(campaign_id, relayer.address, Action.AD_VIEW)])
        deadline = suite.chain.latest_timestamp() + 3600
        signature = suite.sign_settlement(attester, campaign_id, signed, deadline)
        with reverts(EscrowInvalidSigner, expected=attester.address):
            relay_settlement(suite, relayer, campaign_id, changed, attester.address, deadline, signature)

    def test_settle_by_sig_reverts_when_the_relayer_changes_the_campaign(
        self, suite, campaigns, campaign_id, consented, attester, relayer
    ):
        other = campaigns.create()
        batch = encode_batch([campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)])
        deadline = suite.chain.latest_timestamp() + 3600
        signature = suite.sign_settlement(attester, campaign_id, batch, deadline)
        with reverts(EscrowInvalidSigner, expected=attester.address):
            relay_settlement(suite, relayer, other, batch, attester.address, deadline, signature)

    def test_settle_by_sig_signed_by_a_non_attester_reverts_not_attester(
        self, suite, campaigns, campaign_id, consented, relayer, accounts
    ):
        outsider = accounts.consumers[5]
        batch = encode_batch([campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)])
        deadline = suite.chain.latest_timestamp() + 3600
        signature = suite.sign_settlement(outsider, campaign_id, batch, deadline)
        with reverts(EscrowNotAttester, campaign_id=campaign_id, caller=outsider.address):
            relay_settlement(suite, relayer, campaign_id, batch, outsider.address, deadline, signature)


class TestSettleBySigSignature(SignedActionBehavior):
    @pytest.fixture
    def signed_action(self, suite, campaigns, campaign_id, consented, attester, relayer) -> SignedAction:
        batch = encode_batch([campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)])

        def sign(signer: LocalAccount, domain: typed_data.Domain, deadline: int) -> bytes:
            nonce = escrow_nonce(suite, attester.address)
            message = typed_data.settlement_message(attester.address, campaign_id, batch, nonce, deadline)
            return typed_data.sign(signer, domain, "Settlement", message)

        def relay(signature: bytes, deadline: int) -> TxReceipt:
            return relay_settlement(suite, relayer, campaign_id, batch, attester.address, deadline, signature)

        return SignedAction(
            owner=attester,
            domain=suite.escrow_domain,
            sign=sign,
            relay=relay,
            nonce=lambda: escrow_nonce(suite, attester.address),
            expired_error=EscrowExpiredSignature,
            invalid_signer_error=EscrowInvalidSigner,
            invalid_signer_field="expected",
        )
