"""The one results table: printed, and written as JSON, Markdown and PNG plots."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Row

COLUMNS = ("row", "measurement", "value", "target", "verdict", "notes")


def _cells(row: Row) -> tuple[str, ...]:
    value = "—" if row.value is None else f"{row.value:,.2f} {row.unit}"
    return (row.family, row.name, value, row.target, row.verdict, row.note)


def table(rows: list[Row]) -> str:
    cells = [COLUMNS, *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(rows: list[Row], mode: str) -> str:
    head = f"# imagecore benchmark ({mode}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n\n"
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(r)) + " |" for r in rows]
    plots = "\n\n![](list_scaling.png) ![](transfer.png) ![](http_reads.png)\n"
    return head + "\n".join(lines) + plots


def write(rows: list[Row], directory: Path, mode: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    document = {
        "mode": mode,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "rows": [{**asdict(row), "verdict": row.verdict} for row in rows],
    }
    (directory / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    (directory / "results.md").write_text(markdown(rows, mode))
    try:
        _plots(rows, directory)
    except ImportError:
        print("matplotlib is missing (pip install '.[bench]'): no plots drawn")


def _plots(rows: list[Row], directory: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    scaling = [r for r in rows if r.family.startswith("2") and r.value is not None]
    if scaling:
        figure, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4))
        for store, key in (("SQLite", "vm_steps_per_image"), ("DynamoDB", "scanned_per_image")):
            mine = [r for r in scaling if r.name.startswith(store)]
            if mine:
                sizes = [r.extra["images"] for r in mine]
                left.plot(sizes, [r.extra["page_ms"] for r in mine], "o-", label=store)
                right.plot(sizes, [r.extra[key] for r in mine], "o-", label=f"{store}: {key}")
        for axis, label in ((left, "page of 50 (ms)"), (right, "items read per image")):
            axis.set_xscale("log")
            axis.set_yscale("log")
            axis.set_xlabel("images stored")
            axis.set_ylabel(label)
            axis.legend()
        figure.tight_layout()
        figure.savefig(directory / "list_scaling.png", dpi=100)
        pyplot.close(figure)
    transfer = [r for r in rows if r.family.startswith("3") and r.value is not None]
    if transfer:
        figure, axis = pyplot.subplots(figsize=(10, 4))
        names = [r.name.replace(" (embedded server)", "") for r in transfer]
        places = range(len(transfer))
        for shift, key in ((-0.25, "ours"), (0, "nginx"), (0.25, "disk")):
            axis.bar([p + shift for p in places], [r.extra[key] for r in transfer], 0.25, label=key)
        axis.set_xticks(list(places), names)
        axis.set_ylabel("MiB/s")
        axis.legend()
        figure.tight_layout()
        figure.savefig(directory / "transfer.png", dpi=100)
        pyplot.close(figure)
    reads = [r for r in rows if r.family.startswith("1") and r.value is not None]
    if reads:
        figure, axis = pyplot.subplots(figsize=(8, 4))
        names = [
            f"{r.name.split(' (')[0]}, {r.extra.get('workers', 1):.0f} worker(s)" for r in reads
        ]
        axis.barh(names, [r.value or 0 for r in reads])
        axis.xaxis.set_major_formatter(lambda value, _: f"{value:,.0f}")
        axis.tick_params(axis="x", labelrotation=30)
        axis.set_xlabel("requests/s, 16 connections")
        figure.tight_layout()
        figure.savefig(directory / "http_reads.png", dpi=100)
        pyplot.close(figure)
