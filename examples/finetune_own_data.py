"""Fine-tune a bundled (or your own) model on your own DFT data, then compare errors before/after.

    python examples/finetune_own_data.py                                  # demo data shipped here
    python examples/finetune_own_data.py --train my_dft.xyz --from-model si-zuo2020-small --minutes 20

Your file can be anything ``ase.io.read`` understands with energies and forces (and stress for
periodic cells): extxyz, ASE .traj/.db, VASP OUTCAR/vasprun.xml... E0s are refitted to your data's
energy reference, so labels from another DFT code are fine. The learning rate here is lower than the
CLI's default (1e-4 vs 3e-3): this demo continues a model on data of its own level of theory, where it
should stay close to where it started. Hold out frames you did not train on to judge the result (``--test``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dens_calc.train import TrainConfig, evaluate_file, format_table, train

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", default=str(HERE / "data" / "si_zuo2020_test_12.xyz"), help="your labelled data")
    parser.add_argument("--test", default=None, help="held-out labelled frames (default: the validation split)")
    parser.add_argument("--from-model", default="si-zuo2020-small", help="bundled model name or checkpoint")
    parser.add_argument("--out", default="finetune-run")
    parser.add_argument("--minutes", type=float, default=3.0, help="wall-clock budget")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    config = TrainConfig(
        train_file=args.train,
        valid_fraction=0.2,
        out_dir=args.out,
        from_model=args.from_model,
        forces="conservative",  # MD, relaxations and phonons need forces = -dE/dr
        stress_weight=1.0,  # ignored automatically where the data has no stress
        lr=1e-4,
        max_epochs=args.epochs,
        time_limit=args.minutes,
        batch_size=2,
        progress=False,
    )
    result = train(config)
    test_file = args.test or args.train
    for label, model in (("before", args.from_model), ("after", str(result.model_path))):
        metrics = evaluate_file(model, test_file)
        print(f"\n== {label} fine-tuning, on {test_file} ==")
        print(format_table(metrics))
    if args.test is None:
        print("\n(no --test file: the numbers above include training frames; pass held-out data to judge the model)")


if __name__ == "__main__":
    main()
