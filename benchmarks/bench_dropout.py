"""Dropout, gradient clipping, decoupled weight decay and class weights (issue 16): an epoch's
time with each, as a ratio to the same epoch without.

Digits (64 -> 30 -> 10, tanh, softmax outputs), the training rows of bench_train.digits: online
epochs (batch 1) and Adam epochs (batch 32), without dropout and with dropout 0.2 on the hidden
layer (and 0.2 on the input too); Adam also with clip_norm (one extra pass over the gradient a
batch), weight_decay, and both; both solvers with class_weight="balanced" (multiplied into the
samples' weights once a fit). An epoch's time is a fit's over its epochs (dropout_epochs of
them), every network trained from the same seed; contenders interleaved (_common), each timed
in its steady state; medians over rounds. Goals: dropout costs <= 15% of an epoch, class
weights nothing measurable. Asserts no time.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/run.py --only dropout
"""
import bench_train as bt
from _common import SHORT_FIT, interleave, steady_run, timed

RATE_ONLINE = 0.01
GOAL = 1 / 1.15             # "dropout costs <= 15%": none's median / dropout's >= 1 / 1.15
VARIANTS = {                # contender -> fit options, per solver
    "online": {"none": {}, "dropout 0.2": dict(dropout=0.2),
               "dropout 0.2 + input 0.2": dict(dropout=0.2, input_dropout=0.2),
               "class_weight balanced": dict(class_weight="balanced")},
    "adam": {"none": {}, "dropout 0.2": dict(dropout=0.2),
             "dropout 0.2 + input 0.2": dict(dropout=0.2, input_dropout=0.2),
             "clip_norm 1": dict(clip_norm=1.0), "weight_decay 1e-4": dict(weight_decay=1e-4),
             "clip_norm + weight_decay": dict(clip_norm=1.0, weight_decay=1e-4),
             "class_weight balanced": dict(class_weight="balanced")},
}
CLASS_WEIGHT_NOISE = 0.95   # "class weights cost nothing measurable": within the 5% of repeats


def epochs(d, solver, options, n, seed):
    """n epochs of solver with the options: {'time': seconds a sample (online) or an epoch
    (adam), 'acc': test accuracy after them}."""
    net = bt.network(d["sizes"], activation="tanh", output="softmax", random_state=seed)
    rate = RATE_ONLINE if solver == "online" else bt.LR_ADAM
    t, _ = timed(lambda: net.fit(d["Xtr"], d["ytr"], solver=solver, epochs=n, batch_size=32,
                                 learning_rate=rate, shuffle=False, tol=0.0,
                                 n_iter_no_change=n, random_state=seed, **options))
    per = net.n_iter_ * (len(d["Xtr"]) if solver == "online" else 1)
    return dict(time=t / per, acc=net.score(d["Xte"], d["yte"]))


def dropout(cfg, make_rows, goal):
    """The workload of run.py (which passes its row and goal helpers)."""
    d = bt.digits()
    rows, goals = [], []
    scales = {"online": ("us/sample", 1e6), "adam": ("ms/epoch", 1e3)}
    for solver, variants in VARIANTS.items():
        contenders = {f"{solver} {name}": steady_run(
            lambda r, o=o: epochs(d, solver, o, cfg["dropout_epochs"], 0), **SHORT_FIT)
            for name, o in variants.items()}
        runs = interleave(contenders, cfg["rounds"])
        unit, scale = scales[solver]
        rows += make_rows("dropout", runs, unit, scale, lambda name: f"{solver} none")
        goals += [goal(rows, "dropout", f"{solver} {name}: costs <= 15% of an epoch",
                       f"{solver} none", f"{solver} {name}", GOAL)
                  for name in variants if name.startswith("dropout")]
        goals.append(goal(rows, "dropout", f"{solver} class_weight: costs nothing measurable "
                          "(5% noise)", f"{solver} none", f"{solver} class_weight balanced",
                          CLASS_WEIGHT_NOISE))
    notes = [f"digits {d['sizes']}, tanh, softmax outputs, {len(d['Xtr'])} training rows, "
             f"{cfg['dropout_epochs']} epochs a fit (batch 32 for adam); ratio: the median "
             "over the same solver's without (none); accuracy after the epochs"]
    return dict(rows=rows, goals=goals, notes=notes)


if __name__ == "__main__":
    import run
    run.main(["--only", "dropout"])
