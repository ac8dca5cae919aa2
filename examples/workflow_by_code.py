"""The demo workflow through the Python API instead of YAML.

Builds the Alpha158 dataset and a LightGBM model, trains inside a tracked run, produces the
same records as `alphalab run`, then reads the results back from the run, as a Qlib user
would with `R.get_recorder().load_object(...)`.

    python examples/workflow_by_code.py [--provider-uri URI] [--quick]
"""

from __future__ import annotations

import argparse

import alphalab
from alphalab.config import init_instance_by_config
from alphalab.tracking import R
from alphalab.workflow import PortAnaRecord, SigAnaRecord, SignalRecord


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider-uri", default=None, help="market data (default: simulated)")
    parser.add_argument("--quick", action="store_true", help="small model, fewer rounds")
    args = parser.parse_args()
    alphalab.init(provider_uri=args.provider_uri)

    segments = {
        "train": ["2015-01-01", "2018-12-31"],
        "valid": ["2019-01-01", "2020-12-31"],
        "test": ["2021-01-01", "2022-12-31"],
    }
    if args.quick:  # the small market used by the tests spans 2017-2020
        segments = {
            "train": ["2017-01-01", "2018-12-31"],
            "valid": ["2019-01-01", "2019-12-31"],
            "test": ["2020-01-01", "2020-12-31"],
        }
    dataset = init_instance_by_config(
        {
            "class": "DatasetH",
            "module_path": "alphalab.data",
            "kwargs": {
                "handler": {
                    "class": "Alpha158",
                    "module_path": "alphalab.data",
                    "kwargs": {
                        "instruments": "csi300",
                        "start_time": segments["train"][0],
                        "end_time": segments["test"][1],
                        "fit_start_time": segments["train"][0],
                        "fit_end_time": segments["train"][1],
                    },
                },
                "segments": segments,
            },
        }
    )
    model = init_instance_by_config(
        {
            "class": "LGBModel",
            "module_path": "alphalab.model",
            "kwargs": {
                "learning_rate": 0.1,
                "num_leaves": 31 if args.quick else 210,
                "num_boost_round": 50 if args.quick else 1000,
                "early_stopping_rounds": 20,
                "num_threads": 2,
            },
        }
    )
    port_analysis_config = {
        "strategy": {
            "class": "TopkDropoutStrategy",
            "module_path": "alphalab.evaluate",
            "kwargs": {"signal": "<PRED>", "topk": 20 if args.quick else 50, "n_drop": 5},
        },
        "backtest": {
            "start_time": segments["test"][0],
            "end_time": segments["test"][1],
            "account": 100_000_000,
            "benchmark": "SH000300",
        },
    }

    with R.start(experiment_name="workflow_by_code") as recorder:
        R.log_params(model="LGBModel", handler="Alpha158")
        model.fit(dataset)
        R.save_objects(**{"params.pkl": model})
        SignalRecord(model, dataset, recorder).generate()
        SigAnaRecord(recorder).generate()
        PortAnaRecord(recorder, port_analysis_config).generate()
        run_id = recorder.id

    # Read the results back, as an analysis notebook would.
    finished = R.get_recorder(recorder_id=run_id, experiment_name="workflow_by_code")
    pred = finished.load_object("pred.pkl")
    report = finished.load_object("portfolio_analysis/report_normal_1day.pkl")
    metrics = finished.list_metrics()
    print(f"run {run_id}: {len(pred)} predictions, {len(report)} backtest days")
    print(f"IC {metrics['IC']:.4f}  Rank IC {metrics['Rank IC']:.4f}")
    print(
        "excess return with cost: annualised "
        f"{metrics['1day.excess_return_with_cost.annualized_return']:.4f}, "
        f"IR {metrics['1day.excess_return_with_cost.information_ratio']:.3f}"
    )


if __name__ == "__main__":
    main()
