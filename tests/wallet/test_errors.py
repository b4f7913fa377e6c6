"""wallet.errors: the codes and exit codes scripts rely on, chosen on purpose and never changed silently."""

from __future__ import annotations

import re

import pytest

from ledger.errors import LedgerError
from wallet import errors

SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
TYPER_USAGE_ERROR = 2

# (code, exit code) per class: a change here is a change to every script that reads the CLI's exit status
EXPECTED = {
    "WalletError": ("wallet_error", 1),
    "KeystoreNotFound": ("keystore_not_found", 3),
    "WrongPassword": ("wrong_password", 4),
    "CorruptKeystore": ("corrupt_keystore", 5),
    "DuplicateKeystore": ("duplicate_keystore", 5),
    "KeystoreExists": ("keystore_exists", 6),
    "InvalidPrivateKey": ("invalid_private_key", 7),
    "InvalidMnemonic": ("invalid_mnemonic", 7),
    "InvalidAddress": ("invalid_address", 7),
    "EmptyPassword": ("empty_password", 7),
    "WalletStorageError": ("wallet_storage_error", 8),
    "SignerMismatch": ("signer_mismatch", 1),
    "NoWallet": ("no_wallet", 3),
    "WalletNotChosen": ("wallet_not_chosen", 3),
    "InvalidAmount": ("invalid_amount", 7),
    "InvalidPurposes": ("invalid_purposes", 7),
    "ApiProblem": ("api_problem", 9),
    "ApiDomainMismatch": ("api_domain_mismatch", 9),
    "ApiUnreachable": ("api_unreachable", 10),
    "RpcUnreachable": ("rpc_unreachable", 10),
    "ChainMismatch": ("chain_mismatch", 11),
    "NoGas": ("no_gas", 11),
    "TransactionRefused": ("transaction_refused", 11),
}


def wallet_errors() -> list[type[errors.WalletError]]:
    found: list[type[errors.WalletError]] = []
    pending: list[type[errors.WalletError]] = [errors.WalletError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


class TestCodes:
    def test_codes_and_exit_codes_are_stable(self):
        assert {cls.__name__: (cls.code, cls.exit_code) for cls in wallet_errors()} == EXPECTED

    @pytest.mark.parametrize("cls", wallet_errors(), ids=lambda cls: cls.__name__)
    def test_every_code_is_snake_case_and_every_exit_code_a_failure_typer_does_not_use(self, cls):
        assert SNAKE_CASE.fullmatch(cls.code)
        assert cls.exit_code not in (0, TYPER_USAGE_ERROR)

    @pytest.mark.parametrize("cls", wallet_errors()[1:], ids=lambda cls: cls.__name__)
    def test_every_error_says_when_it_is_raised(self, cls):
        assert (cls.__doc__ or "").startswith("Raised when")

    def test_an_api_problem_carries_the_apis_code_not_its_class_code(self):
        problem = errors.ApiProblem("nothing_to_claim", 409, "nothing accrued", "see `rewards`", {"code": "x"})
        assert (problem.code, problem.status, problem.help, problem.exit_code) == (
            "nothing_to_claim", 409, "see `rewards`", 9,
        )  # fmt: skip
        assert str(problem) == "nothing accrued (nothing_to_claim, HTTP 409)"
        assert errors.ApiProblem.code == "api_problem"

    def test_wallet_errors_stay_out_of_the_ledger_tree(self):
        # tests/ledger/test_errors.py lists every LedgerError subclass: a wallet error there would break its table
        assert not any(issubclass(cls, LedgerError) for cls in wallet_errors())
