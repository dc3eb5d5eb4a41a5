"""The printed table, the plots and ``docs/benchmarks.md``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.common import Figure, SectionResult


def format_value(figure: Figure) -> str:
    value = figure.value
    if isinstance(value, str):
        return value
    if figure.unit == "rows/s":
        return f"{value:,.0f} rows/s"
    if figure.unit == "x":
        return f"{value:.2f}x"
    if figure.unit == "ms":
        return f"{value:.3f} ms"
    if figure.unit == "MiB":
        return f"{value:,.0f} MiB"
    if figure.unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    return f"{value:g} {figure.unit}".strip()


def verdict(figure: Figure) -> str:
    if figure.passed is None:
        return ""
    return "PASS" if figure.passed else "FAIL"


def rows_of(sections: dict[str, SectionResult]) -> list[list[str]]:
    return [
        [f.section, f.name, format_value(f), f.target, verdict(f), f.note]
        for result in sections.values()
        for f in result.figures
    ]


HEADER = ["section", "figure", "value", "target", "result", "note"]


def text_table(sections: dict[str, SectionResult]) -> str:
    rows = [HEADER, *rows_of(sections)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(sections: dict[str, SectionResult]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows_of(sections):
        row[4] = f"**{row[4]}**" if row[4] else ""
        lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    return "\n".join(lines)


def summary(sections: dict[str, SectionResult]) -> tuple[int, list[Figure]]:
    checked = [f for result in sections.values() for f in result.figures if f.passed is not None]
    return len(checked), [f for f in checked if not f.passed]


# ----------------------------------------------------------------------------- plots


def plot_load(result: SectionResult, path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = result.data["rates"]
    methods = list(rates["first"])
    changed = result.data["changed_fraction"]
    phases = [("first", "first load"), ("reload", f"reload ({changed:.0%} changed)")]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.38
    for offset, (phase, label) in enumerate(phases):
        xs = [i + (offset - 0.5) * width for i in range(len(methods))]
        values = [rates[phase][m] for m in methods]
        bars = ax.bar(xs, values, width, label=label)
        for bar, value in zip(bars, values, strict=True):
            ax.annotate(
                f"{value:,.0f}",
                (bar.get_x() + bar.get_width() / 2, value),
                ha="center",
                va="bottom",
                fontsize=8,
            )
    ax.set_xticks(range(len(methods)), methods)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _pos: f"{value:,.0f}"))
    ax.set_ylabel("day rows per second (invoices + lines)")
    ax.set_title(f"Loading one day of {result.data['invoices']:,} invoices + {result.data['lines']:,} lines")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_memory(result: SectionResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(result.data["peak_mib"])
    peak = [result.data["peak_mib"][n] for n in sizes]
    base = [result.data["base_mib"][n] for n in sizes]
    labels = [f"{n:,} invoices" for n in sizes]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.bar(labels, base, 0.5, label="RSS before the run (Python, Dagster, definitions)", color="#9ab")
    bars = ax.bar(
        labels,
        [p - b for p, b in zip(peak, base, strict=True)],
        0.5,
        bottom=base,
        label="added by the run (up to the peak)",
        color="#d62",
    )
    for bar, value in zip(bars, peak, strict=True):
        ax.annotate(f"peak {value:,.0f} MiB", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom")
    ax.set_ylabel("resident memory, MiB")
    ax.set_ylim(0, max(peak) * 1.15)
    ax.set_title("Peak RSS of materializing one day (fresh process)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_backfill(result: SectionResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = result.data
    labels = ["one run\n(7-day windows)", "one day at a time"]
    values = [data["single"]["seconds"], data["daily"]["seconds"]]
    requests = [data["single"]["requests"], data["daily"]["requests"]]
    if data.get("alt"):
        labels.insert(1, f"one run\n(page size {data['alt']['page_size']})")
        values.insert(1, data["alt"]["seconds"])
        requests.insert(1, data["alt"]["requests"])
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    colors = ["#2a7", "#7b7", "#d62"] if len(values) == 3 else ["#2a7", "#d62"]
    bars = ax.bar(labels, values, 0.5, color=colors)
    for bar, value, count in zip(bars, values, requests, strict=True):
        ax.annotate(
            f"{value:.1f} s\n{count} requests", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom"
        )
    ax.set_ylabel("seconds")
    ax.set_ylim(0, max(values) * 1.2)
    ax.set_title(
        f"Backfill of {data['days']} days x {data['per_day']} invoices, {data['latency'] * 1000:.0f} ms/request"
    )
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_e2e(result: SectionResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wall, peak = result.data["wall"], result.data["peak"]
    names = list(wall)
    labels = [name.replace(" (", "\n(") for name in names]
    colors = ["#d62" if name == "dlt" else "#2a7" for name in names]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, values, unit, title in (
        (left, [wall[n] for n in names], "s", "wall time (median)"),
        (right, [peak[n] for n in names], "MiB", "peak RSS of the process tree (median)"),
    ):
        bars = ax.bar(labels, values, 0.55, color=colors)
        for bar, value in zip(bars, values, strict=True):
            ax.annotate(f"{value:,.1f} {unit}", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom")
        ax.set_ylim(0, max(values) * 1.2)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle(f"End to end: {result.data['invoices']:,} invoices from the simulator into PostgreSQL")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


PLOTS = {
    "load": ("benchmarks_load.png", plot_load, "Throughput per method"),
    "memory": ("benchmarks_memory.png", plot_memory, "Peak memory per day size"),
    "backfill": ("benchmarks_backfill.png", plot_backfill, "Backfill time"),
    "e2e": ("benchmarks_e2e.png", plot_e2e, "End to end against dlt"),
}


E2E_START, E2E_END = "<!-- e2e:start (written by benchmarks/run.py) -->", "<!-- e2e:end -->"
E2E_ANALYSIS = Path(__file__).resolve().parent / "e2e_analysis.md"


def e2e_block(result: SectionResult, machine: dict[str, str], plot: Path | None) -> str:
    """The end-to-end section of docs/benchmarks.md, between markers so that a run of
    ``--only e2e`` replaces it alone."""
    checked, failed = summary({"e2e": result})
    parts = [
        E2E_START,
        f"## End to end against dlt ({checked - len(failed)} of {checked} targets met)",
        "",
        f"Measured {machine.get('date', '')} at commit {machine.get('code', '')}; load average at start "
        f"{machine.get('load average at start (1/5/15 min)', '')} on {machine.get('cpu_count', '')} CPUs "
        "(other work on the machine slows every variant alike: the variants alternate, so compare ratios).",
        "",
        markdown_table({"e2e": result}),
        "",
    ]
    if plot is not None:
        parts += [f"![End to end against dlt]({plot.name})", ""]
    parts += [f"- {note}" for note in result.notes] + [""]
    if E2E_ANALYSIS.exists():
        parts += [E2E_ANALYSIS.read_text().strip(), ""]
    parts.append(E2E_END)
    return "\n".join(parts)


def splice_e2e(path: Path, block: str) -> None:
    """Put ``block`` in place of the end-to-end section of ``path`` (or append it)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if E2E_START in text and E2E_END in text:
        head, rest = text.split(E2E_START, 1)
        text = head + block + rest.split(E2E_END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def existing_e2e(path: Path) -> str | None:
    text = path.read_text() if path.exists() else ""
    if E2E_START in text and E2E_END in text:
        return E2E_START + text.split(E2E_START, 1)[1].split(E2E_END, 1)[0] + E2E_END
    return None


def write_plots(sections: dict[str, SectionResult], directory: Path) -> dict[str, Path]:
    written = {}
    for name, (filename, function, _title) in PLOTS.items():
        if name in sections:
            path = directory / filename
            function(sections[name], path)
            written[name] = path
    return written


# ----------------------------------------------------------------------------- markdown


def write_markdown(
    path: Path,
    sections: dict[str, SectionResult],
    machine: dict[str, str],
    settings: dict[str, Any],
    plots: dict[str, Path],
    analysis: str,
    table: str,
) -> None:
    checked, failed = summary(sections)
    parts = [
        "# Benchmarks",
        "",
        "Generated by `python benchmarks/run.py"
        + (" --quick" if settings.get("quick") else "")
        + "` (see `benchmarks/README.md` for what each figure means). Every comparison below ran "
        "side by side in one run on the same machine; targets are checked here, never in tests.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in machine.items()],
        "",
        "## Settings",
        "",
        "| | |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in settings.items()],
        "",
        f"## Figures ({checked - len(failed)} of {checked} targets met)",
        "",
        markdown_table(sections),
        "",
        "As printed:",
        "",
        "```",
        table,
        "```",
        "",
    ]
    for name, (_filename, _function, title) in PLOTS.items():
        if name in plots:
            parts += [f"### {title}", "", f"![{title}]({plots[name].name})", ""]
    for name, result in sections.items():
        if result.notes:
            parts += [f"### Notes: {name}", "", *[f"- {note}" for note in result.notes], ""]
    if analysis:
        parts += ["## Analysis", "", analysis.strip(), ""]
    path.write_text("\n".join(parts))
