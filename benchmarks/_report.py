"""benchmarks/run.py's output files: latest.md (every table), latest.json (every figure),
latest.png (the chart), and the README's "Speed" section."""
import json
import math
import os
import re
import textwrap

from _common import environment_lines, fmt, markdown_table

DESCRIPTIONS = {
    "cost_gradient": "Full-batch cost and gradient, X 5000 x 400 -> 25 -> 10 sigmoid, "
                     "cross-entropy, lambda 1; one call, after one untimed call.",
    "online": "One online epoch (batch size 1, shuffle off) on digits (1347 x 64 -> 30 -> 10), "
              "every contender from the same Thetas; test accuracy after the epoch.",
    "adam": "Adam, batch 32, softmax outputs, on digits (64 -> 30 -> 10); time an epoch, test "
            "accuracy after all epochs.",
    "synthetic": "2 epochs of Adam, batch 128, on a synthetic 784 -> 256 -> 10 float32 problem "
                 "(labels from a random linear teacher); time an epoch, test accuracy.",
    "python_threads": "Several small networks (digits, 64 -> 30 -> 10) trained one after the "
                      "other (1 thread) or from 2 Python threads; time a network.",
    "scale": "Issue 14 (bench_scale.py): L-BFGS on Dask partitions (a LocalCluster of 2 "
             "single-threaded worker processes) against the in-process fit, per cost evaluation "
             "(fits of 1 and 1 + k iterations, their difference); Spark MLlib's MLP in local[2] "
             "per L-BFGS iteration; an Adam epoch on a float32 numpy.memmap against the same rows "
             "in memory, and its peak memory in a fresh process; the constants of the model of a "
             "distributed iteration (benchmarks/README.md).",
}
COLUMNS = ("median", "min", "max", "ratio", "acc", "fwd/rev")
TITLES = {"cost_gradient": "full-batch cost + gradient, 5000 x 400-25-10",
          "online": "online epoch (batch 1), digits 64-30-10",
          "adam": "Adam, batch 32, digits 64-30-10: an epoch",
          "synthetic": "Adam, batch 128, synthetic 784-256-10 float32: an epoch"}
ORDER_OK = (0.8, 1.25)    # fwd/rev outside this range is marked "!"
LEGEND = ("median, min, max over rounds; ratio = the contender's median / cbackprop's of the "
          "same dtype (above 1: cbackprop is faster); acc = test accuracy; fwd/rev = median of "
          "the rounds run in one order / of those run in the reverse order (near 1: the figure "
          f"does not depend on which contender ran before it; '!' outside {ORDER_OK[0]}-"
          f"{ORDER_OK[1]}); check = how the contender was checked against cbackprop or "
          "cbackprop.reference before timing.")
README_START, README_END = "<!-- speed:start -->", "<!-- speed:end -->"


def verdict(g):
    """met, NOT met, skipped, or reported (a figure to report, with no bound)."""
    if g.get("report"):
        return "reported"
    return "skipped" if g["met"] is None else "met" if g["met"] else "NOT met"


def _met(g):
    v = verdict(g)
    return "**NOT met**" if v == "NOT met" else v


def goals_table(goals):
    return markdown_table(["workload", "goal", "measured", "met", "detail"],
                          [[g["workload"], g["goal"], g["value"], _met(g), g.get("detail", "")]
                           for g in goals])


def rows_table(rows):
    """A workload's results table: contender, median, min, max, unit, ratio, acc, fwd/rev,
    check (see LEGEND)."""
    headers = ["contender", "median", "min", "max", "unit", "ratio", "acc", "fwd/rev", "check"]
    cells = [[r["contender"], fmt(r["median"]), fmt(r["min"]), fmt(r["max"]), r["unit"],
              "-" if r["ratio"] is None else f"{r['ratio']:.2f}x",
              "-" if r["accuracy"] is None else f"{r['accuracy']:.4f}",
              _order(r["order"]), "; ".join(x for x in (r["check"], r["note"]) if x)]
             for r in rows]
    return markdown_table(headers, cells, right=COLUMNS)


def _order(x):
    if x is None:
        return "-"
    return f"{x:.2f}" + ("" if ORDER_OK[0] <= x <= ORDER_OK[1] else " !")


def series_table(s):
    """One sweep: a row per contender, a column per x: median (fastest round), in the series'
    unit."""
    xs = next(iter(s["lines"].values()))["x"]
    headers = ["contender"] + [str(x) for x in xs]
    cells = [[c] + [f"{fmt(v, 3)} ({fmt(u, 3)})" for v, u in zip(line["per_unit"],
                                                                line["per_unit_min"])]
             for c, line in s["lines"].items()]
    if "slopes" in s:
        headers.append("log-log slope")
        for cell, c in zip(cells, s["lines"]):
            cell.append(fmt(s["slopes"][c], 3))
    if "speedup" in s:
        headers.append("2 vs 1 thread")
        for cell, c in zip(cells, s["lines"]):
            cell.append(f"{s['speedup'][c]:.2f}x")
    return markdown_table(headers, cells, right=headers[1:])


def memory_table(rows):
    return markdown_table(
        ["contender", "X (MB)", "growth at that X (MB)", "fixed (MB)", "MB per MB of X"],
        [[r["contender"], f"{r['data']:.1f}", f"{r['growth']:.1f}", f"{r['fixed']:.1f}",
          f"{r['slope']:.3f}"] for r in rows], right=("X (MB)", "growth at that X (MB)",
                                                      "fixed (MB)", "MB per MB of X"))


def markdown(env, results, command):
    out = ["# cbackprop benchmarks", "",
           f"`{command}` ({env['seconds']:.0f} s; load average at the end "
           + " ".join(f"{x:.2f}" for x in env["load_after"]) + ")", "", "```"]
    out += environment_lines(env) + ["```", "", "## Goals", "", goals_table(
        [g for res in results.values() for g in res.get("goals", [])]), "", LEGEND]
    for name, res in results.items():
        out += ["", f"## {name}", "", DESCRIPTIONS.get(name, ""),
                f"({res['seconds']:.0f} s; load average {res['load'][0]:.2f} -> "
                f"{res['load'][1]:.2f})", ""]
        if res.get("rows"):
            out += [rows_table(res["rows"]), ""]
        if res.get("memory"):
            out += [memory_table(res["memory"]), ""]
        for key, s in res.get("series", {}).items():
            if isinstance(s, dict) and "lines" in s:
                out += [f"{s['xlabel']}: {s['unit']}, median (fastest round)", "",
                        series_table(s), ""]
        out += res.get("notes", [])
    out += ["", "![benchmarks](latest.png)", ""]
    return "\n".join(out)


def write_json(path, env, cfg, results, command):
    with open(path, "w") as f:
        json.dump(dict(command=command, environment=env, config=cfg, results=results), f,
                  indent=1, default=float)


def render(folder, env, results, command):
    """latest.md and latest.png in folder."""
    with open(os.path.join(folder, "latest.md"), "w") as f:
        f.write(markdown(env, results, command))
    chart(results, env, os.path.join(folder, "latest.png"))


def write_all(folder, env, cfg, results, command):
    os.makedirs(folder, exist_ok=True)
    write_json(os.path.join(folder, "latest.json"), env, cfg, results, command)
    render(folder, env, results, command)


# ----------------------------------------------------------------------------------- README

HEADLINE = ("cost_gradient", "online", "adam", "synthetic")
BUILDS = ("avx512", "avx2", "baseline")      # the README's columns, in this order


def build_of(env):
    """The cbackprop build a run used ("avx512", "avx2" or "baseline")."""
    return env["cbackprop_build"].split()[0]


def readme_runs(folder, cpu):
    """The saved --readme runs (readme-BUILD.json in folder), one a build, of this CPU only
    (another machine's figures are not comparable), in BUILDS order."""
    runs = []
    for build in BUILDS:
        path = os.path.join(folder, f"readme-{build}.json")
        if os.path.exists(path):
            with open(path) as f:
                saved = json.load(f)
            if saved["environment"]["cpu"] == cpu:
                runs.append(saved)
    return runs


def _by_build(runs, items, key):
    """{key(item): {build: item}} over every run's items(run), in first-seen order."""
    table = {}
    for run in runs:
        for item in items(run):
            table.setdefault(key(item), {})[build_of(run["environment"])] = item
    return table


def readme_section(runs):
    """The README's Speed section from one saved run a build (readme_runs): the headline
    rows and the goals, with a column of figures for each build."""
    builds = [build_of(r["environment"]) for r in runs]
    rows = _by_build(runs, lambda r: [x for w in HEADLINE
                                      for x in r["results"].get(w, {}).get("rows", [])],
                     lambda x: (x["workload"], x["contender"], x["unit"]))
    cells = []
    for (workload, contender, unit), per in rows.items():
        acc = next((x["accuracy"] for x in per.values() if x["accuracy"] is not None), None)
        cells.append([workload, contender, unit] + [
            c for b in builds for c in (
                (fmt(per[b]["median"]), "-" if per[b]["ratio"] is None
                 else f"{per[b]['ratio']:.2f}x") if b in per else ("", ""))]
            + ["-" if acc is None else f"{acc:.3f}"])
    goals = _by_build(runs, lambda r: [g for res in r["results"].values()
                                       for g in res.get("goals", [])],
                      lambda g: (g["workload"], g["goal"]))
    gcells = [[w, goal] + [c for b in builds for c in (
        (per[b]["value"], _met(per[b])) if b in per else ("not run", ""))]
        for (w, goal), per in goals.items()]
    env0 = runs[0]["environment"]
    when = "; ".join(f"the {b} build {r['environment']['date'][:16].replace('T', ' ')}, load "
                     + " ".join(f"{x:.2f}" for x in r["environment"]["load"])
                     for b, r in zip(builds, runs))
    commands = [("" if b == "avx512" else f"CBACKPROP_CPU={b} ") + r["command"]
                for b, r in zip(builds, runs)]
    return "\n".join([
        README_START,
        textwrap.fill(f"Measured on {env0['cpu']} ({env0['cores']} cores, a shared and noisy "
                      f"machine) for each compiled build of cbackprop ({when}), every "
                      "contender in the same run, interleaved, medians. Processors with "
                      "AVX-512 run the avx512 build, most others avx2 (`CBACKPROP_CPU` "
                      "forces one):", 100),
        "", "```bash", *commands, "```", "",
        markdown_table(["workload", "contender", "unit"]
                       + [c for b in builds for c in (f"{b} median", f"{b} ratio")]
                       + ["accuracy"], cells,
                       right=tuple(c for b in builds for c in (f"{b} median",
                                                                f"{b} ratio"))
                       + ("accuracy",)), "",
        textwrap.fill("`ratio`: the contender's median over cbackprop's of the same "
                      "dtype and build (the peers do not change with cbackprop's build). The "
                      "goals, for each build:", 100), "",
        markdown_table(["workload", "goal"] + [c for b in builds for c in (b, f"{b} met")],
                       gcells), "",
        "![benchmarks](benchmarks/results/latest.png)", "",
        textwrap.fill("Every table, sweep and check, with the BLAS kernels and versions: "
                      "[benchmarks/results/latest.md](benchmarks/results/latest.md) (the "
                      "last full run) and `benchmarks/results/readme-BUILD.json`; how to run "
                      "the suite: [benchmarks/README.md](benchmarks/README.md).", 100),
        README_END])


def update_readme(path, section):
    """Replace the text between the Speed markers of README.md (append a Speed section if
    there is none)."""
    with open(path) as f:
        text = f.read()
    if README_START in text:
        text = re.sub(re.escape(README_START) + ".*?" + re.escape(README_END),
                      lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n## Speed\n\n" + section + "\n"
    with open(path, "w") as f:
        f.write(text)


# ------------------------------------------------------------------------------------ chart

OURS, PEER = "#d62728", "#7f7f7f"


def _bars(ax, rows, title):
    rows = sorted(rows, key=lambda r: r["median"])
    y = range(len(rows))
    med = [r["median"] for r in rows]
    err = [[r["median"] - r["min"] for r in rows], [r["max"] - r["median"] for r in rows]]
    ax.barh(y, med, xerr=err, color=[OURS if r["contender"].startswith("cbackprop") else PEER
                                     for r in rows], error_kw=dict(lw=0.8, capsize=2))
    ax.set_yticks(list(y), [r["contender"] for r in rows], fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel(rows[0]["unit"] + " (log)", fontsize=8)
    ax.set_title(title, fontsize=9)
    for i, r in enumerate(rows):
        if r["ratio"] is not None and not r["contender"].startswith("cbackprop"):
            ax.text(r["max"] * 1.08, i, f"{r['ratio']:.1f}x", va="center", fontsize=6)
    ax.invert_yaxis()


def _lines(ax, s, transform=None, ylabel=None, logx=True, logy=True):
    """Median per unit of work against x, shaded down to the fastest round."""
    def f(values):
        return [transform(v) if transform else v for v in values]
    for c, line in s["lines"].items():
        drawn = ax.plot(line["x"], f(line["per_unit"]), "o-" if c.startswith("cbackprop")
                        else "s--", ms=3, lw=1.2, label=c)
        ax.fill_between(line["x"], f(line["per_unit"]), f(line["per_unit_min"]), alpha=0.15,
                        color=drawn[0].get_color(), lw=0)
    if logx:
        ax.set_xscale("log", base=2 if s["name"] in ("width", "batch") else 10)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(s["xlabel"], fontsize=8)
    ax.set_ylabel(ylabel or s["unit"], fontsize=8)
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3, which="both")


def _speedups(ax, speedups, title, goal=None):
    names = list(speedups)
    ax.barh(range(len(names)), [speedups[n] for n in names],
            color=[OURS if n.startswith("cbackprop") else PEER for n in names])
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.axvline(1, color="k", lw=0.8)
    if goal:
        ax.axvline(goal, color=OURS, ls="--", lw=0.8, label=f"goal {goal}x")
        ax.legend(fontsize=6)
    ax.set_xlim(0, max([2.1] + [v * 1.1 for v in speedups.values()]))
    ax.set_xlabel("2 threads vs 1 (x)", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.invert_yaxis()


def _memory(ax, series):
    for c, s in series.items():
        ax.plot(s["data_mb"], s["growth_mb"], "o-", ms=3, label=f"{c} ({s['slope']:.2f} MB/MB)")
    ax.set_xlabel("X (MB)", fontsize=8)
    ax.set_ylabel("peak RSS growth during fit (MB)", fontsize=8)
    ax.set_ylim(bottom=0)
    ax.set_title("memory: peak growth during fit against data size", fontsize=9)
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)


def _goals(ax, goals):
    ax.axis("off")
    lines = [("..  " if g.get("report") else "OK  " if g["met"] else "--  "
              if g["met"] is None else "NO  ")
             + f"{g['workload']}: {g['goal']} ({g['value']})" for g in goals]
    ax.text(0, 1, "goals\n" + "\n".join(lines), va="top", fontsize=6.5, family="monospace",
            transform=ax.transAxes)


def chart(results, env, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    series = {k: v for res in results.values() for k, v in res.get("series", {}).items()}
    panels = [w for w in HEADLINE if results.get(w, {}).get("rows")]
    panels += [k for k in ("samples", "width", "batch", "depth", "blas_threads",
                           "python_threads", "memory") if k in series]
    panels.append("goals")
    cols = 4
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(22, 5.2 * rows), squeeze=False)
    for ax, p in zip(axes.flat, panels):
        if p in HEADLINE:
            _bars(ax, results[p]["rows"], TITLES[p])
        elif p in ("width", "depth"):
            _lines(ax, series[p], lambda v: 1e3 / v, "GFLOP/s", logx=p == "width", logy=False)
            ax.set_title(f"{p}: throughput (flat or rising: no cliff)", fontsize=9)
        elif p in ("samples", "batch"):
            _lines(ax, series[p])
            ax.set_title(f"{p}: time a sample (flat: linear)", fontsize=9)
        elif p == "blas_threads":
            _speedups(ax, series[p]["speedup"], "threads: every library at 2 threads vs 1")
        elif p == "python_threads":
            _speedups(ax, series[p], "small networks from 2 Python threads vs 1", goal=1.8)
        elif p == "memory":
            _memory(ax, series[p])
        else:
            _goals(ax, [g for res in results.values() for g in res.get("goals", [])])
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"cbackprop {env['versions']['cbackprop']} benchmarks, {env['date'][:10]}, "
                 f"{env['cpu']}, {env['cores']} cores (red: cbackprop; medians, min-max bars)",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    """Render latest.md, latest.png (and with --readme the README's Speed section) again from
    a results JSON, without running anything."""
    import argparse
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    p.add_argument("json", nargs="?", default=os.path.join(here, "results", "latest.json"))
    p.add_argument("--readme", action="store_true", help="rewrite README.md's Speed section")
    args = p.parse_args(argv)
    with open(args.json) as f:
        saved = json.load(f)
    env, results, command = saved["environment"], saved["results"], saved["command"]
    render(os.path.dirname(os.path.abspath(args.json)), env, results, command)
    if args.readme:
        runs = readme_runs(os.path.join(here, "results"), env["cpu"])
        update_readme(os.path.join(here, "..", "README.md"), readme_section(runs))


if __name__ == "__main__":
    main()
