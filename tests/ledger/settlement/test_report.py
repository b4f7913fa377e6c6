"""ledger/settlement/report.py: what the batcher reads from a receipt, whichever way the node's answer came."""

from __future__ import annotations

from ledger.settlement.report import Mined

LOG = {"address": "0x" + "e5" * 20, "topics": [], "data": "0x"}


class TestMined:
    def test_a_json_rpc_receipt_reads_its_hex_quantities(self):
        receipt = {"status": "0x1", "blockNumber": "0x1a", "gasUsed": "0x5208", "logs": [LOG], "extra": "ignored"}
        assert Mined.of(receipt) == Mined(status=1, block_number=26, gas_used=21_000, logs=[LOG])

    def test_a_web3_receipt_reads_its_ints(self):
        receipt = {"status": 0, "blockNumber": 26, "gasUsed": 21_000, "logs": []}
        assert Mined.of(receipt) == Mined(status=0, block_number=26, gas_used=21_000, logs=[])
