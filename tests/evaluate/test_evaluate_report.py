"""PNG charts and the self-contained HTML report; the page rendered by headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphalab.evaluate import (
    MarketData,
    TopkDropoutStrategy,
    backtest,
    plot_ic,
    render_html_report,
    signal_analysis,
    write_report,
)
from alphalab.evaluate.report import figure_to_png
from alphalab.exceptions import DataError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def results(seed: int) -> tuple[object, object]:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2023-01-02", periods=60)
    names = [f"S{i:02d}" for i in range(30)]
    close = 10 * np.exp(np.cumsum(rng.normal(0.0005, 0.02, (60, 30)), axis=0))
    market = MarketData(
        close=pd.DataFrame(close, index=dates, columns=names),
        benchmark=pd.Series(rng.normal(0, 0.01, 60), index=dates),
    )
    index = pd.MultiIndex.from_product([dates, names], names=["datetime", "instrument"])
    label = pd.Series(rng.normal(size=len(index)), index=index)
    pred = label * 0.2 + pd.Series(rng.normal(size=len(index)), index=index)
    bt = backtest(TopkDropoutStrategy(signal=pred, topk=8, n_drop=2), market)
    sa = signal_analysis(pred, label, ana_long_short=True)
    return bt, sa


def test_write_report_writes_pngs_and_a_self_contained_page(
    results: tuple[object, object], tmp_path: Path
) -> None:
    bt, sa = results
    files = write_report(tmp_path / "out", backtest=bt, signal=sa, title="Run <1>")  # type: ignore[arg-type]
    assert set(files.images) == {"cumulative_return", "drawdown", "turnover", "ic"}
    for path in files.images.values():
        assert path.read_bytes().startswith(PNG_MAGIC)
    page = files.html.read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 4
    assert "http://" not in page and "https://" not in page
    assert "Run &lt;1&gt;" in page
    for text in (
        "excess_return_with_cost",
        "information_ratio",
        "max_drawdown",
        "Rank ICIR",
        "Long-Short Ann Sharpe",
        "Holdings on",
        "ffr",
    ):
        assert text in page


def test_report_needs_something_to_show() -> None:
    with pytest.raises(DataError, match="needs a backtest result, a signal analysis, or both"):
        render_html_report()
    with pytest.raises(DataError, match="at least one defined IC value"):
        plot_ic(pd.Series([np.nan, np.nan]))


def test_signal_only_report(results: tuple[object, object]) -> None:
    _, sa = results
    page = render_html_report(signal=sa)  # type: ignore[arg-type]
    assert page.count("data:image/png;base64,") == 1
    assert figure_to_png(plot_ic(sa.ic)).startswith(PNG_MAGIC)  # type: ignore[attr-defined]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_html_report_renders_in_headless_chromium(
    results: tuple[object, object], tmp_path: Path
) -> None:
    browser = _chromium()
    if browser is None:
        message = "headless Chromium is not installed (Debian package: chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    bt, sa = results
    files = write_report(tmp_path / "out", backtest=bt, signal=sa)  # type: ignore[arg-type]
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,1800",
            f"--screenshot={shot}",
            files.html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    from matplotlib.image import imread

    pixels = imread(shot)[:, :, :3]
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    assert pixels.std() > 0.05  # not a blank page

    # The charts' line colours are on screen: matplotlib's default blue and orange.
    def share(rgb: tuple[int, int, int]) -> float:
        target = np.array(rgb) / 255.0
        return float((np.abs(pixels - target).max(axis=2) < 0.06).mean())

    assert share((31, 119, 180)) > 1e-4
    assert share((255, 127, 14)) > 1e-4
