"""The feature lists of Qlib's Alpha158 and Alpha360 handlers, generated from templates."""

from __future__ import annotations

WINDOWS = (5, 10, 20, 30, 60)

_KBAR = (
    ("KMID", "($close-$open)/$open"),
    ("KLEN", "($high-$low)/$open"),
    ("KMID2", "($close-$open)/($high-$low+1e-12)"),
    ("KUP", "($high-Greater($open, $close))/$open"),
    ("KUP2", "($high-Greater($open, $close))/($high-$low+1e-12)"),
    ("KLOW", "(Less($open, $close)-$low)/$open"),
    ("KLOW2", "(Less($open, $close)-$low)/($high-$low+1e-12)"),
    ("KSFT", "(2*$close-$high-$low)/$open"),
    ("KSFT2", "(2*$close-$high-$low)/($high-$low+1e-12)"),
)

# Rolling features: name prefix, template with {d} standing for the window.
_UP = "Greater($close-Ref($close, 1), 0)"
_DOWN = "Greater(Ref($close, 1)-$close, 0)"
_MOVE = "Abs($close-Ref($close, 1))"
_VUP = "Greater($volume-Ref($volume, 1), 0)"
_VDOWN = "Greater(Ref($volume, 1)-$volume, 0)"
_VMOVE = "Abs($volume-Ref($volume, 1))"
_WV = "Abs($close/Ref($close, 1)-1)*$volume"
_ROLLING = (
    ("ROC", "Ref($close, {d})/$close"),
    ("MA", "Mean($close, {d})/$close"),
    ("STD", "Std($close, {d})/$close"),
    ("BETA", "Slope($close, {d})/$close"),
    ("RSQR", "Rsquare($close, {d})"),
    ("RESI", "Resi($close, {d})/$close"),
    ("MAX", "Max($high, {d})/$close"),
    ("MIN", "Min($low, {d})/$close"),
    ("QTLU", "Quantile($close, {d}, 0.8)/$close"),
    ("QTLD", "Quantile($close, {d}, 0.2)/$close"),
    ("RANK", "Rank($close, {d})"),
    ("RSV", "($close-Min($low, {d}))/(Max($high, {d})-Min($low, {d})+1e-12)"),
    ("IMAX", "IdxMax($high, {d})/{d}"),
    ("IMIN", "IdxMin($low, {d})/{d}"),
    ("IMXD", "(IdxMax($high, {d})-IdxMin($low, {d}))/{d}"),
    ("CORR", "Corr($close, Log($volume+1), {d})"),
    ("CORD", "Corr($close/Ref($close,1), Log($volume/Ref($volume, 1)+1), {d})"),
    ("CNTP", "Mean($close>Ref($close, 1), {d})"),
    ("CNTN", "Mean($close<Ref($close, 1), {d})"),
    ("CNTD", "Mean($close>Ref($close, 1), {d})-Mean($close<Ref($close, 1), {d})"),
    ("SUMP", f"Sum({_UP}, {{d}})/(Sum({_MOVE}, {{d}})+1e-12)"),
    ("SUMN", f"Sum({_DOWN}, {{d}})/(Sum({_MOVE}, {{d}})+1e-12)"),
    ("SUMD", f"(Sum({_UP}, {{d}})-Sum({_DOWN}, {{d}}))/(Sum({_MOVE}, {{d}})+1e-12)"),
    ("VMA", "Mean($volume, {d})/($volume+1e-12)"),
    ("VSTD", "Std($volume, {d})/($volume+1e-12)"),
    ("WVMA", f"Std({_WV}, {{d}})/(Mean({_WV}, {{d}})+1e-12)"),
    ("VSUMP", f"Sum({_VUP}, {{d}})/(Sum({_VMOVE}, {{d}})+1e-12)"),
    ("VSUMN", f"Sum({_VDOWN}, {{d}})/(Sum({_VMOVE}, {{d}})+1e-12)"),
    ("VSUMD", f"(Sum({_VUP}, {{d}})-Sum({_VDOWN}, {{d}}))/(Sum({_VMOVE}, {{d}})+1e-12)"),
)


def _lagged(field: str, lag: int, denominator: str) -> str:
    numerator = f"${field}" if lag == 0 else f"Ref(${field}, {lag})"
    return f"{numerator}/{denominator}"


def alpha158() -> tuple[list[str], list[str]]:
    """Qlib's Alpha158 features: (expressions, names), 158 of each, in Qlib's order."""
    pairs: list[tuple[str, str]] = list(_KBAR)
    for field in ("open", "high", "low", "vwap"):
        pairs.append((f"{field.upper()}0", _lagged(field, 0, "$close")))
    for prefix, template in _ROLLING:
        pairs.extend((f"{prefix}{d}", template.format(d=d)) for d in WINDOWS)
    return [e for _, e in pairs], [n for n, _ in pairs]


def alpha360() -> tuple[list[str], list[str]]:
    """Qlib's Alpha360 features: the last 60 days of prices and volume relative to today."""
    pairs: list[tuple[str, str]] = []
    for field in ("close", "open", "high", "low", "vwap", "volume"):
        denominator = "($volume+1e-12)" if field == "volume" else "$close"
        for lag in range(59, -1, -1):
            pairs.append((f"{field.upper()}{lag}", _lagged(field, lag, denominator)))
    return [e for _, e in pairs], [n for n, _ in pairs]
