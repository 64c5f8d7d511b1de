"""The cost report as text for a person and as JSON for a program."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from payment_cost.model import Costing

BLOCKS = (("pipeline", "The pipeline, up to the posting call"), ("ledger", "The built-in ledger"))


def by_service(costing: Costing, block: str | None = None) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for item in costing.items:
        if block in (None, item.block):
            totals[item.service] += item.per_million(costing.volume)
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def summary(costing: Costing) -> dict[str, Any]:
    volume = costing.volume
    postings = costing.postings_per_record * volume
    ledger_month = costing.monthly("ledger")
    return {
        "name": costing.inventory.name,
        "volume": volume,
        "perMillionRecords": {
            "pipeline": round(costing.total("pipeline"), 4),
            "ledger": round(costing.total("ledger"), 4),
            "total": round(costing.total(), 4),
            "pipelineOfWhichTransactionsTable": round(costing.source_table(), 4),
        },
        "perMonth": {b: round(costing.monthly(b), 2) for b, _ in BLOCKS}
        | {"total": round(costing.monthly(), 2)},
        "perCompletedLifecycle": (
            round(costing.total() / 1e6 * costing.records_per_lifecycle, 8)
            if costing.records_per_lifecycle
            else None
        ),
        "recordsPerCompletedLifecycle": costing.records_per_lifecycle,
        "ledgerPerPosting": round(ledger_month / postings, 8) if postings else None,
        "postingsPerRecord": round(costing.postings_per_record, 4),
        "byService": {
            b: {k: round(v, 4) for k, v in by_service(costing, b).items()} for b, _ in BLOCKS
        },
        "lineItems": [
            {
                "block": i.block,
                "service": i.service,
                "item": i.item,
                "perMillion": round(i.per_million(volume), 4),
                "perRecord": i.per_record,
                "monthlyFixed": round(i.monthly_fixed, 4),
                "quantity": i.quantity,
                "prices": i.prices,
            }
            for i in costing.items
        ],
        "notes": costing.notes,
    }


def text(
    costing: Costing, *, minimum: float = 0.0005, blocks: tuple[tuple[str, str], ...] = BLOCKS
) -> list[str]:
    volume = costing.volume
    lines = [
        f"{costing.inventory.name}: dollars per million records written to the transactions "
        f"table, at {volume:,} a month"
    ]
    for block, title in blocks:
        items = sorted(
            (i for i in costing.items if i.block == block), key=lambda i: -i.per_million(volume)
        )
        lines += [
            "",
            f"{title}: ${costing.total(block):.2f} per million "
            f"(${costing.monthly(block):,.2f} a month)",
        ]
        for item in items:
            value = item.per_million(volume)
            if value < minimum:
                continue
            lines.append(f"  {value:8.3f}  {item.service:<14} {item.item:<48} {item.quantity}")
        if block == "pipeline" and costing.source_table():
            lines.append(
                "  of which the transactions table (the source's write, storage, backups, stream "
                f"reads): {costing.source_table():.2f}"
            )
        lines.append(
            "  by service: "
            + ", ".join(f"{s} {v:.2f}" for s, v in by_service(costing, block).items())
        )
    if len(blocks) < len(BLOCKS):
        return lines
    data = summary(costing)
    lines.append("")
    if data["ledgerPerPosting"] is not None:
        lines.append(
            f"The ledger per posting: ${data['ledgerPerPosting'] * 1e6:.2f} per million postings "
            f"({costing.postings_per_record:.2f} postings per record)"
        )
    if data["perCompletedLifecycle"] is not None:
        lines.append(
            "Per completed card lifecycle "
            f"({data['recordsPerCompletedLifecycle']:.2f} records each): "
            f"${data['perCompletedLifecycle'] * 1e6:.2f} per million lifecycles"
        )
    lines += [f"Note: {n}" for n in costing.notes]
    return lines


def comparison(ours: Costing, guidance: Costing, leaner: Costing) -> dict[str, Any]:
    from payment_cost.guidance import GUIDANCE_ESTIMATE_VOLUME, GUIDANCE_MONTHLY_ESTIMATE
    from payment_cost.leaner import GIVES_UP

    pipeline = ours.total("pipeline")
    quoted = GUIDANCE_MONTHLY_ESTIMATE / GUIDANCE_ESTIMATE_VOLUME * 1e6
    return {
        "guidance": {
            "modelledPerMillion": round(guidance.total("pipeline"), 4),
            "ratioToThisPipeline": round(guidance.total("pipeline") / pipeline, 2),
            "quotedPerMillion": round(quoted, 2),
            "quoted": f"${GUIDANCE_MONTHLY_ESTIMATE:,.2f} a month for about 20 million (its "
            "AWS Pricing Calculator estimate)",
            "byService": {k: round(v, 4) for k, v in by_service(guidance, "pipeline").items()},
            "lineItems": summary(guidance)["lineItems"],
        },
        "leaner": {
            "pipelinePerMillion": round(leaner.total("pipeline"), 4),
            "savingPerMillion": round(pipeline - leaner.total("pipeline"), 4),
            "givesUp": list(GIVES_UP),
            "byService": {k: round(v, 4) for k, v in by_service(leaner, "pipeline").items()},
            "lineItems": summary(leaner)["lineItems"],
        },
    }


def comparison_text(ours: Costing, guidance: Costing, leaner: Costing) -> list[str]:
    data = comparison(ours, guidance, leaner)
    g, lean = data["guidance"], data["leaner"]
    pipeline = ours.total("pipeline")
    lines = ["", "=" * 100, ""]
    lines += text(guidance, blocks=(("pipeline", "The guidance's design, modelled the same way"),))
    lines += [
        "",
        f"This pipeline ${pipeline:.2f} per million; the guidance's design "
        f"${guidance.total('pipeline'):.2f} modelled here, "
        f"{g['ratioToThisPipeline']:.1f} times as much"
        f" (the guidance quotes ${g['quotedPerMillion']:.2f} per million: {g['quoted']}).",
        "",
        "=" * 100,
        "",
    ]
    lines += text(
        leaner,
        blocks=(("pipeline", "Option (modelled, not built): the leaner topology"),),
    )
    lines += [
        "",
        f"The leaner topology: ${leaner.total('pipeline'):.2f} per million, "
        f"${pipeline - leaner.total('pipeline'):.2f} less than the pipeline as deployed. "
        "It gives up:",
        *(f"  - {reason}" for reason in lean["givesUp"]),
    ]
    return lines
