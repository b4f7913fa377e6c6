from ledger.model import Action, RejectReason
from tests.contracts.helpers import REWARDS


def test_settle_pays_consented_engagement_and_rejects_the_rest(campaigns, consumer, accounts):
    campaign_id = campaigns.create()
    campaigns.consent(consumer)
    stranger = accounts.consumers[1]
    install = campaigns.engagement(campaign_id, consumer.address, Action.INSTALL)
    again = campaigns.engagement(campaign_id, consumer.address, Action.INSTALL)
    no_consent = campaigns.engagement(campaign_id, stranger.address, Action.AD_VIEW)
    receipt = campaigns.settle(campaign_id, [install, again, no_consent])
    (paid,) = campaigns.rewarded(receipt)
    assert paid["event_id"] == install.event_id and paid["amount"] == REWARDS[Action.INSTALL]
    assert campaigns.rejected(receipt) == {
        again.event_id: RejectReason.LIFETIME_CAP_REACHED,
        no_consent.event_id: RejectReason.NO_CONSENT,
    }
