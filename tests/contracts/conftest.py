"""Contract tests run on eth-tester: one chain and one deployed suite per session, each test in a snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from ledger.chain import Chain, DevAccounts, connect
from ledger.settings import Settings
from ledger.suite import Suite
from tests.contracts.helpers import MARKETER_FUNDS, CampaignFactory


@pytest.fixture(scope="session")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    settings = Settings(chain="eth-tester", data_dir=Path(tmp_path_factory.mktemp("eth-tester")))
    with connect(settings) as connected:
        yield connected


@pytest.fixture(scope="session")
def deployed(chain: Chain) -> Suite:
    suite = Suite.deploy(chain)
    suite.transfer(chain.accounts.deployer, chain.accounts.marketer.address, MARKETER_FUNDS)
    return suite


@pytest.fixture
def suite(chain: Chain, deployed: Suite) -> Iterator[Suite]:
    """The deployed suite; whatever a test does to the chain is undone after it."""
    snapshot = chain.snapshot()
    yield deployed
    chain.revert(snapshot)


@pytest.fixture
def accounts(chain: Chain) -> DevAccounts:
    return chain.accounts


@pytest.fixture
def marketer(accounts: DevAccounts) -> LocalAccount:
    return accounts.marketer


@pytest.fixture
def attester(accounts: DevAccounts) -> LocalAccount:
    return accounts.attester


@pytest.fixture
def relayer(accounts: DevAccounts) -> LocalAccount:
    return accounts.deployer


@pytest.fixture
def consumer(accounts: DevAccounts) -> LocalAccount:
    return accounts.consumers[0]


@pytest.fixture
def campaigns(suite: Suite) -> CampaignFactory:
    return CampaignFactory(suite)


@pytest.fixture
def campaign_id(campaigns: CampaignFactory) -> int:
    """A funded campaign with the default terms (tests.contracts.helpers.REWARDS), attested by `attester`."""
    return campaigns.create()


@pytest.fixture
def consented(campaigns: CampaignFactory, consumer: LocalAccount) -> LocalAccount:
    """The consumer, with every purpose granted to the default brand for 90 days."""
    campaigns.consent(consumer)
    return consumer
