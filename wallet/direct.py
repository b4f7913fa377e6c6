"""A token transfer sent by the wallet itself, paying its own gas: for a wallet that holds ether and would rather
not depend on the API's relayer. The token and chain are the ones the API's deployment names (the permit domain
of GET /v1/consents/nonce), so a node of another chain is refused before anything is signed.

``ledger.chain`` is imported when a transfer is sent, not with the wallet: it takes a second to import (eth-tester,
py-evm) and every other command does without it.
"""

from __future__ import annotations

from dataclasses import dataclass

from wallet.address import checksummed
from wallet.errors import ChainMismatch, NoGas, RpcUnreachable, TransactionRefused
from wallet.wallet import Wallet

DEFAULT_RPC = "http://127.0.0.1:8545"  # where `make run` serves its anvil devnet


@dataclass(frozen=True)
class DirectTransfer:
    tx_hash: str
    block_number: int
    gas_used: int


def transfer(wallet: Wallet, rpc_url: str, token: str, chain_id: int, to: str, value: int) -> DirectTransfer:
    """Sends ``token.transfer(to, value)`` from the wallet through the node at ``rpc_url`` and waits for it."""
    from web3.exceptions import Web3Exception

    from ledger.chain import connect
    from ledger.contracts import bind, transact
    from ledger.errors import ChainError, LedgerError, TransactionFailed
    from ledger.settings import Settings

    recipient = checksummed(to)
    try:
        with connect(Settings(chain=rpc_url)) as chain:
            if chain.chain_id != chain_id:
                raise ChainMismatch(rpc_url, chain.chain_id, chain_id)
            if chain.balance(wallet.address) == 0:
                raise NoGas(wallet.address)
            call = bind(chain, "RewardToken", token).functions.transfer(recipient, value)
            try:
                receipt = transact(chain, wallet.account, call)
            except TransactionFailed as exc:  # mined and reverted, with no revert data to name it
                raise TransactionRefused(exc.code, str(exc)) from None
            except (ChainError, OSError) as exc:
                raise RpcUnreachable(rpc_url, str(exc)) from None
            except LedgerError as exc:  # a revert, by name: insufficient_balance, invalid_receiver ...
                raise TransactionRefused(exc.code, str(exc), exc.help) from None
            except Web3Exception as exc:  # the node's own refusal: too little ether for the gas, a bad nonce ...
                raise TransactionRefused("rpc_error", str(exc)) from None
    except (ChainError, OSError) as exc:  # connecting, or reading the chain id and balance
        raise RpcUnreachable(rpc_url, str(exc)) from None
    return DirectTransfer("0x" + bytes(receipt["transactionHash"]).hex(), receipt["blockNumber"], receipt["gasUsed"])
