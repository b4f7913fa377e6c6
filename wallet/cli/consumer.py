"""What a consumer does through the API, gaslessly: consent, link, rewards, claim, transfer, history.

Reads show what the API indexed from the chain, so an action just relayed appears once the indexer has read its
block (a second or two under ``make run``). Every write prints its transaction and block.
"""

from __future__ import annotations

from typing import Annotated

import typer

from wallet import direct
from wallet.address import checksummed
from wallet.amounts import format_tokens, parse_tokens
from wallet.cli import render
from wallet.cli.context import options, out, print_json
from wallet.client import CLAIM_MAX_CAMPAIGNS
from wallet.purposes import parse_purposes

DAY = 86_400
MAX_DAYS = 36_500  # a century: the registry takes any expiry below 2^40 seconds, people mean less

Json = Annotated[bool, typer.Option("--json", help="Print JSON (amounts as decimal strings of base units).")]
Brand = Annotated[str, typer.Option("--brand", help="The brand's address (its marketer account).")]
PURPOSES_HELP = "Comma-separated: ads, email, location, profile, purchases, analytics; or all."
Purposes = Annotated[str, typer.Option("--purposes", help=PURPOSES_HELP)]


def consent_grant(
    ctx: typer.Context,
    brand: Brand,
    purposes: Purposes,
    days: Annotated[int, typer.Option("--days", min=1, max=MAX_DAYS, help="The consent lapses after N days.")] = 90,
    as_json: Json = False,
) -> None:
    """Grant a brand consent for purposes (gasless).

    Signed by the wallet, relayed by the API, which pays the gas. A grant replaces the purposes and expiry held
    for that brand.
    """
    names, brand = parse_purposes(purposes), checksummed(brand)
    with options(ctx).client() as client:
        expires_at = client.now() + days * DAY  # the registry compares it with the chain's clock
        relayed = client.grant(brand, names, expires_at)
    if as_json:
        print_json(relayed)
        return
    out.print(f"[green]granted[/green] {', '.join(names)} to {brand} until {render.when(expires_at)}")
    out.print(render.relayed(relayed), soft_wrap=True)


def consent_revoke(ctx: typer.Context, brand: Brand, purposes: Purposes, as_json: Json = False) -> None:
    """Withdraw purposes from a brand (gasless).

    Engagements that need them are refused from the block that mines the revoke.
    """
    names, brand = parse_purposes(purposes), checksummed(brand)
    with options(ctx).client() as client:
        relayed = client.revoke(brand, names)
    if as_json:
        print_json(relayed)
        return
    out.print(f"[green]revoked[/green] {', '.join(names)} from {brand}")
    out.print(render.relayed(relayed), soft_wrap=True)


def consent_list(ctx: typer.Context, as_json: Json = False) -> None:
    """Your current consent per brand, from the chain, with its expiry."""
    with options(ctx).client() as client:
        consents = client.consents()
    if as_json:
        print_json(consents)
    elif not consents:
        out.print("no consent given (a grant just relayed shows once the API has indexed its block)")
    else:
        render.show(out, render.consents(consents))


def consent_receipts(ctx: typer.Context, as_json: Json = False) -> None:
    """Every grant and revoke you made, oldest first, with its transaction."""
    with options(ctx).client() as client:
        receipts = client.consent_receipts()
    if as_json:
        print_json(receipts)
    else:
        render.show(out, render.receipts(receipts))


def link(
    ctx: typer.Context,
    customer: Annotated[int, typer.Option("--customer", min=1, help="Your customer id at the brand (it gives it).")],
    brand: Brand,
    as_json: Json = False,
) -> None:
    """Link this wallet to your customer record at a brand.

    The brand then sees your rewarded engagements on its record; it never sees your other wallets or brands.
    """
    with options(ctx).client() as client:
        made = client.link(customer, checksummed(brand))
    if as_json:
        print_json(made)
        return
    out.print(f"[green]linked[/green] to customer {customer} of {made.brand} (chain {made.chain_id})")


def links(ctx: typer.Context, as_json: Json = False) -> None:
    """The brands this wallet is linked to."""
    with options(ctx).client() as client:
        made = client.links()
    if as_json:
        print_json(made)
    else:
        render.show(out, render.links(made))


def rewards(ctx: typer.Context, as_json: Json = False) -> None:
    """Your rewards per campaign, and every engagement the chain refused, with its reason.

    Per campaign: engagements paid, tokens accrued, claimed and claimable now. A refused engagement shows the
    chain's reason: no_consent, daily_cap_reached, budget_exhausted ...
    """
    with options(ctx).client() as client:
        answer = client.rewards()
    if as_json:
        print_json(answer)
    elif not answer.campaigns:
        out.print(f"no rewards yet for {answer.wallet}")
    else:
        for listing in render.rewards(answer):
            render.show(out, listing)


def claim(
    ctx: typer.Context,
    campaign: Annotated[
        list[int] | None,
        typer.Option("--campaign", min=0, help="A campaign to claim from; repeat for several (default: all)."),
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="Who receives the tokens (default: this wallet).")] = None,
    as_json: Json = False,
) -> None:
    """Claim your rewards from the escrow (gasless).

    Without --campaign, claims every campaign with something to claim. The tokens go to this wallet, or to --to.
    """
    recipient = checksummed(to) if to else None  # a typo is refused before anything is signed
    with options(ctx).client() as client:
        ids, total = list(dict.fromkeys(campaign or [])), None
        if not ids:
            claimable = [c for c in client.rewards().campaigns if c.claimable > 0]
            ids, total = [c.campaign_id for c in claimable], sum(c.claimable for c in claimable)
        if not ids:
            if as_json:
                print_json([])
            else:
                out.print("nothing to claim")
            return
        relayed = [
            client.claim(ids[start : start + CLAIM_MAX_CAMPAIGNS], recipient)
            for start in range(0, len(ids), CLAIM_MAX_CAMPAIGNS)
        ]
        recipient = recipient or client.address
    if as_json:
        print_json(relayed)
        return
    what = f"{format_tokens(total)} tokens" if total is not None else "your rewards"
    listed = ", ".join(map(str, ids))
    out.print(f"[green]claimed[/green] {what} from campaign{'s' if len(ids) > 1 else ''} {listed} to {recipient}")
    for one in relayed:
        out.print(render.relayed(one), soft_wrap=True)


def transfer(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", help="The wallet that receives the tokens.")],
    amount: Annotated[
        str,
        typer.Option("--amount", help="Tokens to send, as a decimal such as 1.5 (at most 18 decimals)."),
    ],
    gasless: Annotated[
        bool,
        typer.Option(
            "--gasless/--direct",
            help="Gasless: the API's relayer sends it on your signed permit. Direct: this wallet sends the token "
            "transfer itself, through --rpc, and pays the gas in ether.",
        ),
    ] = True,
    as_json: Json = False,
) -> None:
    """Give reward tokens to another wallet.

    The amount is in tokens, converted exactly: 1.5 is 1500000000000000000 base units (the token has 18
    decimals; more decimals are refused, never rounded).
    """
    value, recipient = parse_tokens(amount), checksummed(to)
    opts = options(ctx)
    with opts.client() as client:
        if gasless:
            relayed = client.transfer(recipient, value)
            if as_json:
                print_json(relayed)
                return
            out.print(f"[green]sent[/green] {format_tokens(value)} tokens to {recipient}")
            out.print(render.relayed(relayed), soft_wrap=True)
            return
        token = client.nonces().permit_domain  # the deployment's token and chain, as the API knows them
        wallet = opts.unlock(client.address)
        sent = direct.transfer(wallet, opts.rpc, token.verifyingContract, token.chainId, recipient, value)
    if as_json:
        print_json(
            {"action": "transfer", "tx_hash": sent.tx_hash, "block_number": sent.block_number,
             "gas_used": sent.gas_used, "to": recipient, "value": str(value)}
        )  # fmt: skip
        return
    out.print(f"[green]sent[/green] {format_tokens(value)} tokens to {recipient} directly")
    paid = f"tx {sent.tx_hash} in block {sent.block_number}, gas {sent.gas_used:,} paid by this wallet"
    out.print(paid, soft_wrap=True)


def history(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show the newest N rewards.")] = 100,
    everything: Annotated[bool, typer.Option("--all", help="Show every reward (follows every page).")] = False,
    as_json: Json = False,
) -> None:
    """Every reward paid to you, newest first, with its transaction hash and block."""
    with options(ctx).client() as client:
        paid = client.reward_history(None if everything else limit)
    if as_json:
        print_json(paid)
    elif not paid:
        out.print("no rewards paid yet")
    else:
        render.show(out, render.history(paid))
