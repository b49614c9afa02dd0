"""Network.summary's table: layers, units, activations, Theta shapes, parameter counts,
the dtype and memory. Reads a network's public attributes only (no import of network.py),
so that a model file's network and an estimator's network_ print alike."""


def _bytes(n):
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024


def summary(net):
    """The table as a string (one line a layer: input, hidden ones, output; then totals)."""
    sizes, thetas = net.layer_sizes, net.thetas
    names = ["input"] + [f"hidden {l}" for l in range(1, len(sizes) - 1)] + ["output"]
    acts = ["-"] + list(net.activation) + [net.output]
    rows = [("layer", "units", "activation", "Theta", "parameters")]
    rows.append((names[0], str(sizes[0]), acts[0], "-", "0"))
    for l, t in enumerate(thetas, start=1):
        rows.append((names[l], str(sizes[l]), acts[l], f"Theta({l}) {t.shape[0]} x {t.shape[1]}",
                     f"{t.size:,}"))
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    lines = [f"Network {' -> '.join(map(str, sizes))}, loss {net.loss}"]
    for k, r in enumerate(rows):
        lines.append("  ".join(cell.rjust(w) if c in (1, 4) else cell.ljust(w)
                               for c, (cell, w) in enumerate(zip(r, widths))).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    total = sum(t.size for t in thetas)
    biases = sum(t.shape[0] for t in thetas)
    itemsize = net.dtype.itemsize
    lines.append(f"total parameters: {total:,} ({total - biases:,} weights, {biases:,} biases)")
    lines.append(f"dtype {net.dtype.name}: {_bytes(total * itemsize)} of parameters "
                 f"({itemsize} bytes each)")
    return "\n".join(lines)
