"""PortAnaRecord: backtest the predictions with a strategy and record Qlib's portfolio analysis."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alphalab.config import Settings, get_settings, init_instance_by_config
from alphalab.data import MarketStore, open_market_store
from alphalab.evaluate import BacktestResult, MarketData, TopkDropoutStrategy, backtest
from alphalab.exceptions import ConfigError, DataError
from alphalab.logging import get_logger
from alphalab.tracking import Recorder
from alphalab.workflow.records._base import RecordTemp
from alphalab.workflow.records._report import write_run_report
from alphalab.workflow.records._signal import SignalRecord

logger = get_logger(__name__)

_BACKTEST_KEYS = frozenset({"start_time", "end_time", "account", "benchmark", "exchange_kwargs"})
_MARKET_FIELDS = ("close", "open", "vwap", "change", "factor")
#: Frequencies the daily backtest can report, as Qlib spells them.
_DAY_FREQS = ("day", "1day", "1d")


def _check_port_config(config: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    if not isinstance(config, Mapping):
        raise ConfigError(f"PortAnaRecord config must be a mapping; got {config!r}")
    unknown = set(config) - {"strategy", "backtest", "executor"}
    if unknown:
        raise ConfigError(
            f"PortAnaRecord config has unknown key(s) {sorted(unknown)}; expected strategy, "
            "backtest (and optionally executor)"
        )
    if "strategy" not in config:
        raise ConfigError("PortAnaRecord config needs a 'strategy' section")
    executor = config.get("executor")
    if executor is not None:
        kwargs = executor.get("kwargs", {}) if isinstance(executor, Mapping) else {}
        if kwargs.get("time_per_step", "day") not in _DAY_FREQS:
            raise ConfigError(
                "PortAnaRecord config.executor: only a daily executor (time_per_step: day) is "
                f"supported; got {kwargs.get('time_per_step')!r}"
            )
    bt = dict(config.get("backtest") or {})
    unknown = set(bt) - _BACKTEST_KEYS
    if unknown:
        raise ConfigError(
            f"PortAnaRecord config.backtest has unknown key(s) {sorted(unknown)}; expected "
            f"{sorted(_BACKTEST_KEYS)}"
        )
    return config["strategy"], bt


def load_market(
    store: MarketStore, instruments: list[str], start: Any, end: Any, benchmark: Any
) -> MarketData:
    """Daily prices of ``instruments`` (and the benchmark) for a backtest."""
    fields = [f for f in _MARKET_FIELDS if f in store.fields()]
    codes = list(instruments)
    if isinstance(benchmark, str) and benchmark not in codes:
        codes.append(benchmark)
    frame = store.read(fields, codes, start, end, future=1)
    return MarketData.from_frame(frame, benchmark=benchmark if isinstance(benchmark, str) else None)


class PortAnaRecord(RecordTemp):
    """Run the configured strategy over the predictions and record the portfolio analysis.

    Writes ``portfolio_analysis/{report_normal,positions_normal,indicators_normal,
    port_analysis,indicator_analysis}_1day.pkl``, logs ``1day.excess_return_*`` metrics and
    ``1day.ffr/pa/pos``, keeps the whole result as ``portfolio_analysis/backtest.pkl``, and adds
    an HTML report with charts under ``report/``.
    """

    artifact_path = "portfolio_analysis"
    depend_cls = SignalRecord

    def __init__(
        self,
        recorder: Recorder | None = None,
        config: Mapping[str, Any] | None = None,
        risk_analysis_freq: str | list[str] | None = None,
        indicator_analysis_freq: str | list[str] | None = None,
        indicator_analysis_method: str | None = None,
        skip_existing: bool = False,
        settings: Settings | None = None,
    ) -> None:
        super().__init__(recorder)
        self.config = config
        self.risk_analysis_freq = risk_analysis_freq
        self.indicator_analysis_freq = indicator_analysis_freq
        self.indicator_analysis_method = indicator_analysis_method
        self.skip_existing = skip_existing
        self.settings = settings

    def list(self) -> list[str]:
        names = ("report_normal", "positions_normal", "indicators_normal", "port_analysis")
        return [self.get_path(f"{n}_1day.pkl") for n in (*names, "indicator_analysis")]

    def _check_freqs(self) -> None:
        for name in ("risk_analysis_freq", "indicator_analysis_freq"):
            value = getattr(self, name)
            freqs = [value] if isinstance(value, str) else list(value or ["day"])
            bad = [f for f in freqs if f not in _DAY_FREQS]
            if bad:
                raise ConfigError(
                    f"PortAnaRecord {name}: only the daily analysis is available; got {bad}"
                )

    def generate(self, **kwargs: Any) -> None:
        """Backtest ``pred.pkl`` and record the analysis."""
        if self.skip_existing and all(self._exists(p) for p in self.list()):
            logger.info("PortAnaRecord: artifacts exist; skipped")
            return
        strategy_config, bt = _check_port_config(self.config or {})
        self._check_freqs()
        self.check()
        pred = self.load("pred.pkl")
        strategy = init_instance_by_config(
            strategy_config,
            "alphalab.evaluate",
            accept_types=TopkDropoutStrategy,
            placeholders={"PRED": pred},
        )
        settings = self.settings or get_settings()
        dates = pred.index.get_level_values("datetime")
        start = bt.get("start_time") or dates.min()
        end = bt.get("end_time")
        instruments = sorted(pred.index.get_level_values("instrument").unique())
        store = open_market_store(settings.provider_uri, settings=settings)
        market = load_market(store, instruments, start, end or dates.max(), bt.get("benchmark"))
        result = backtest(
            strategy,
            market,
            start_time=bt.get("start_time"),
            end_time=end,
            account=bt.get("account", 1e8),
            benchmark=bt.get("benchmark"),
            exchange_kwargs=bt.get("exchange_kwargs"),
        )
        self._save_result(result)

    def _save_result(self, result: BacktestResult) -> None:
        if result.report.empty:
            raise DataError("The backtest produced no trading day")
        self.save(
            **{
                "report_normal_1day.pkl": result.report,
                "positions_normal_1day.pkl": result.position_dict(),
                "indicators_normal_1day.pkl": result.indicators,
                "port_analysis_1day.pkl": result.port_analysis(),
                "indicator_analysis_1day.pkl": result.indicator_analysis(
                    self.indicator_analysis_method or "mean"
                ),
                "backtest.pkl": result,
            }
        )
        metrics = result.metrics()
        self.recorder.log_metrics(step=None, **metrics)
        logger.info(
            "Backtest: excess return with cost %.4f annualised, IR %.3f, max drawdown %.4f",
            metrics.get("1day.excess_return_with_cost.annualized_return", float("nan")),
            metrics.get("1day.excess_return_with_cost.information_ratio", float("nan")),
            metrics.get("1day.excess_return_with_cost.max_drawdown", float("nan")),
        )
        self._write_report(result)

    def _write_report(self, result: BacktestResult) -> None:
        with tempfile.TemporaryDirectory(prefix="alphalab-report-") as tmp:
            write_run_report(self.recorder, Path(tmp), backtest=result)
