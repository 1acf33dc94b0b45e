"""``udl report``: every method's miniature reproduction, written as one HTML page.

A method adds its section by shipping ``udl/<method>/report.py`` with a function decorated by
:func:`section`. The function receives a :class:`Context` and returns a :class:`SectionResult`::

    from udl.report import Context, SectionResult, section

    @section("collapse", title="Neural collapse under MSE", order=40)
    def run(ctx: Context) -> SectionResult:
        res = SectionResult(summary="Trained an MLP on digits ...")
        for epoch in ctx.progress(range(ctx.pick(quick=5, full=50)), desc="epochs"):
            ...
        res.numbers["nc1_final"] = 0.01
        res.add_figure(ctx.savefig(fig, "collapse_nc.png"), "NC1-NC4 over epochs")
        res.add_table("Decomposition", ["term", "value"], [["L_NC1", 0.1]])
        res.add_claim("NC1 -> 0 in the terminal phase", paper="~1e-3", ours="2e-3", holds=True)
        return res

``Context.quick`` selects the small settings (the whole quick report must run in under
3 minutes on a 2-core CPU, the full one in under 20).
"""

from __future__ import annotations

import dataclasses
import json
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from udl._plugins import find_plugins, load_plugin

__all__ = ["Context", "SectionResult", "Claim", "section", "registered_sections", "run_report"]


@dataclasses.dataclass
class Claim:
    """One claim of the paper and what this run measured for it."""

    claim: str
    paper: str
    ours: str
    holds: bool | None  # None: not decidable at this scale


@dataclasses.dataclass
class SectionResult:
    """What a section returns: text, numbers, figures, tables and claims."""

    summary: str = ""
    numbers: dict[str, Any] = dataclasses.field(default_factory=dict)
    figures: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    tables: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    claims: list[Claim] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def add_figure(self, path: str | Path, caption: str) -> None:
        self.figures.append((Path(path).name, caption))

    def add_table(self, title: str, header: list[str], rows: list[list[Any]]) -> None:
        self.tables.append({"title": title, "header": list(header), "rows": [list(r) for r in rows]})

    def add_claim(self, claim: str, paper: str, ours: str, holds: bool | None) -> None:
        self.claims.append(Claim(claim, paper, ours, holds))


@dataclasses.dataclass
class Context:
    """What a section gets: where to write, on which device, how big, and helpers."""

    out_dir: Path
    device: torch.device
    quick: bool
    seed: int = 0
    show_progress: bool = True

    def pick(self, quick: Any, full: Any) -> Any:
        """``quick`` in ``--quick`` mode, else ``full``."""
        return quick if self.quick else full

    def progress(self, iterable: Iterable, desc: str = "", total: int | None = None, **kw):
        """A tqdm progress bar (silent when progress is off)."""
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc, total=total, disable=not self.show_progress,
                    leave=False, **kw)

    def generator(self, offset: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed + offset)

    def savefig(self, fig, name: str) -> Path:
        """Save a matplotlib figure as PNG into the report folder and close it."""
        import matplotlib.pyplot as plt

        path = self.out_dir / name
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        return path


@dataclasses.dataclass
class _Section:
    name: str
    title: str
    order: int
    run: Callable[[Context], SectionResult]


_REGISTRY: dict[str, _Section] = {}


def section(name: str, title: str, order: int = 100):
    """Register a report section (decorator)."""

    def wrap(fn: Callable[[Context], SectionResult]):
        _REGISTRY[name] = _Section(name, title, order, fn)
        return fn

    return wrap


def registered_sections() -> list[_Section]:
    """All sections: the built-in ones plus every ``udl.<method>.report`` module."""
    from udl.report import build_section  # noqa: F401  (registers "build")

    for module in find_plugins("report").values():
        load_plugin(module)
    return sorted(_REGISTRY.values(), key=lambda s: (s.order, s.name))


def run_report(
    out_dir: str | Path,
    quick: bool = False,
    only: list[str] | None = None,
    device: str = "cpu",
    seed: int = 0,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Run the sections and write ``index.html``, ``results.json`` and the PNGs to ``out_dir``.

    A section that raises is reported as failed (with its traceback) and the others still run;
    the returned dict says which failed so the command line can exit non-zero.
    """
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections = registered_sections()
    if only:
        unknown = sorted(set(only) - {s.name for s in sections})
        if unknown:
            raise ValueError(
                f"--only: unknown section(s) {unknown}; available: {[s.name for s in sections]}"
            )
        sections = [s for s in sections if s.name in only]
    ctx = Context(out, torch.device(device), quick, seed, show_progress)
    results: dict[str, Any] = {
        "quick": quick,
        "device": device,
        "seed": seed,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "sections": {},
    }
    for sec in sections:
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        try:
            res = sec.run(ctx)
            status, error = "ok", None
        except Exception:  # noqa: BLE001 - one broken section must not hide the others
            res, status, error = SectionResult(), "failed", traceback.format_exc()
        results["sections"][sec.name] = {
            "title": sec.title,
            "status": status,
            "error": error,
            "seconds": round(time.perf_counter() - t0, 2),
            **dataclasses.asdict(res),
        }
    (out / "results.json").write_text(json.dumps(results, indent=2, default=_jsonable))
    from udl.report.html import render

    (out / "index.html").write_text(render(results))
    return results


def _jsonable(value: Any):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")
