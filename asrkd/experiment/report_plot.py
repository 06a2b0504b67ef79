"""The temperature sweep as a PNG: frame accuracy and WER of the students against T, with the
baseline and the ensemble as reference lines (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from asrkd.fileio import atomic_write_bytes


def plot_temperature_sweep(results: dict[str, Any], path: Path) -> None:
    """``results``: :func:`asrkd.experiment.report.collect_results` output with a non-empty sweep."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = results["temperature_sweep"]
    ts = [r["T"] for r in sweep]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    panels = (("frame_acc", "frame accuracy (%)"), ("wer", "WER (%)"))
    for ax, (metric, ylabel) in zip(axes, panels):
        for split, style in (("dev", "o--"), ("test", "o-")):
            pts = [(t, 100 * r[f"{split}_{metric}"]) for t, r in zip(ts, sweep) if r[f"{split}_{metric}"] is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=f"student, {split}")
        for name, color in (("baseline", "tab:gray"), ("ensemble", "tab:green")):
            v = results["systems"][name][f"test_{metric}"]
            if v is not None:
                ax.axhline(100 * v, color=color, linestyle=":", label=f"{name}, test")
        ax.set_xscale("log")
        ax.set_xticks(ts, [f"{t:g}" for t in ts])
        ax.set_xlabel("temperature T")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Distilled student vs soft-target temperature")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
