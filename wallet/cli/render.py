"""Listings for people: amounts in tokens with their exact base units, times in UTC, addresses and hashes in full
(a consumer pastes them into an explorer), never cut or folded. A listing is a table when the terminal is wide
enough for every cell on its line, else one block of ``field: value`` lines per row. ``--json`` prints the API's
answers instead (``context.print_json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from rich.cells import cell_len
from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

from wallet.amounts import format_tokens
from wallet.keystore import KeystoreEntry
from wallet.models import Consent, ConsentReceipt, Link, Relayed, Reward, Rewards

BORDERS_PER_COLUMN = 3  # a rule and a space either side; the table's left edge adds one more


@dataclass(frozen=True)
class Tokens:
    """An amount cell: token base units, shown as tokens with the units beside or under them."""

    units: int


Cell = str | Tokens | Text


@dataclass
class Listing:
    title: str
    columns: list[tuple[str, str]]  # (header, "text" or "number"): numbers are right-aligned
    rows: list[list[Cell]] = field(default_factory=list)


def show(console: Console, listing: Listing) -> None:
    """Prints the listing as a table if it fits the console's width, else as one block per row."""
    widths = [
        max([len(header), *(_width(row[i]) for row in listing.rows)]) for i, (header, _) in enumerate(listing.columns)
    ]
    if sum(widths) + BORDERS_PER_COLUMN * len(widths) + 1 <= console.width:
        table = Table(title=listing.title)
        for (header, kind), width in zip(listing.columns, widths, strict=True):
            justify: JustifyMethod = "right" if kind == "number" else "left"
            table.add_column(header, no_wrap=True, width=width, justify=justify)
        for row in listing.rows:
            table.add_row(*(_table_cell(cell) for cell in row))
        console.print(table)
        return
    console.print(Text(listing.title, style="bold"))
    for row in listing.rows:
        console.print()
        for (header, _), cell in zip(listing.columns, row, strict=True):
            console.print(Text.assemble((f"{header}: ", "dim"), _line_cell(cell)), soft_wrap=True)


def _width(cell: Cell) -> int:
    """The cell's widest line in the table."""
    return max(cell_len(line) for line in _table_cell(cell).plain.split("\n"))


def _table_cell(cell: Cell) -> Text:
    """A cell's text in a table, never read as rich markup (a path may hold brackets)."""
    if isinstance(cell, Tokens):
        text = Text(format_tokens(cell.units))
        if cell.units:
            text.append(f"\n{cell.units}", style="dim")
        return text
    return Text(cell) if isinstance(cell, str) else cell


def _line_cell(cell: Cell) -> Text | str:
    if isinstance(cell, Tokens):
        base_units = f" ({cell.units} base units)" if cell.units else ""
        return f"{format_tokens(cell.units)} tokens{base_units}"
    return cell


def when(timestamp: int | None) -> str:
    """A unix time in UTC to the minute (headers say UTC)."""
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M")


def wallets(entries: list[KeystoreEntry]) -> Listing:
    listing = Listing("wallets", [("address", "text"), ("keystore file", "text")])
    listing.rows = [[entry.address, str(entry.path)] for entry in entries]
    return listing


def consents(rows: list[Consent]) -> Listing:
    listing = Listing(
        "consents, as indexed from the chain",
        [("brand", "text"), ("purposes", "text"), ("expires (UTC)", "text"), ("active", "text"),
         ("block", "number"), ("tx", "text")],
    )  # fmt: skip
    for c in rows:
        active = Text("yes", style="green") if c.active else Text("no", style="yellow")
        listing.rows.append([c.brand, ", ".join(c.purposes) or "(none)", when(c.expires_at), active,
                             str(c.block_number), c.tx_hash])  # fmt: skip
    return listing


def receipts(rows: list[ConsentReceipt]) -> Listing:
    """Oldest first; the block's time only if the API gave any (it does while the indexer holds it)."""
    timed = any(r.block_time is not None for r in rows)
    listing = Listing(
        "consent receipts, oldest first",
        [*([("time (UTC)", "text")] if timed else []), ("change", "text"), ("brand", "text"),
         ("purposes", "text"), ("held after", "text"), ("expires (UTC)", "text"), ("block", "number"), ("tx", "text")],
    )  # fmt: skip
    for r in rows:
        cells: list[Cell] = [r.change, r.brand, ", ".join(r.purposes), ", ".join(r.held_after) or "(none)",
                             when(r.expires_at), str(r.block_number), r.tx_hash]  # fmt: skip
        listing.rows.append([when(r.block_time), *cells] if timed else cells)
    return listing


def links(rows: list[Link]) -> Listing:
    listing = Listing("links to brands' customer records", [("brand", "text"), ("chain", "number"),
                                                            ("linked at (UTC)", "text")])  # fmt: skip
    for link in rows:
        linked_at = link.linked_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        listing.rows.append([link.brand, str(link.chain_id), linked_at])
    return listing


def rewards(answer: Rewards) -> list[Listing]:
    """The figures per campaign and, if the chain refused any engagement, the refusals."""
    figures = Listing(
        f"rewards of {answer.wallet}, in tokens",
        [("campaign", "number"), ("paid", "number"), ("accrued", "number"), ("claimed", "number"),
         ("claimable", "number")],
    )  # fmt: skip
    refused = Listing(
        "refused engagements, with the chain's reason",
        [("campaign", "number"), ("event", "number"), ("reason", "text"), ("block", "number"), ("tx", "text")],
    )
    for c in answer.campaigns:
        claimable: Cell = Tokens(c.claimable)
        if c.claimable_source == "indexed":  # the API could not ask the escrow
            claimable = f"{format_tokens(c.claimable)} (indexed; the chain did not answer)"
        figures.rows.append([str(c.campaign_id), str(c.paid_count), Tokens(c.accrued), Tokens(c.claimed), claimable])
        for r in c.rejected:
            refused.rows.append([str(c.campaign_id), str(r.event_id), r.reason, str(r.block_number), r.tx_hash])
    return [figures, refused] if refused.rows else [figures]


def history(rows: list[Reward]) -> Listing:
    listing = Listing(
        "rewards paid, newest first, in tokens",
        [("time (UTC)", "text"), ("campaign", "number"), ("event", "number"), ("action", "text"),
         ("amount", "number"), ("block", "number"), ("tx", "text")],
    )  # fmt: skip
    for r in rows:
        listing.rows.append([when(r.occurred_at), str(r.campaign_id), str(r.event_id), r.action, Tokens(r.amount),
                             str(r.block_number), r.tx_hash])  # fmt: skip
    return listing


def relayed(relayed: Relayed) -> str:
    return f"tx {relayed.tx_hash} in block {relayed.block_number}, gas paid by the API's relayer {relayed.relayer}"
