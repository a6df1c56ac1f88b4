#!/usr/bin/python3
"""PyTorch peer benchmark of the toolkit's curvature computations.

Times this toolkit (its pure-Go build and its OpenBLAS build) and PyTorch on
the same networks and data in one run, at W of about 1 000, 5 000 and
20 000 parameters: the exact Hessian, the Gauss-Newton matrix, a
Hessian-vector product, a gradient and the damped inverse (G + lambda I)^-1.
Writes results/peer.md with the times, the ratios, the DGEMM rates and the
machine.

Run from the repository root with Debian's Python, which has python3-torch
and python3-numpy:

    /usr/bin/python3 benchmarks/peer/peer.py

Options: --quick (W of about 1 000 only), --out FILE, --reps K,
--no-openblas, --inverse-max W (largest W for the damped inverse, default
5 009). The networks are tanh MLPs with a linear output and the summed
squared error E = sum_n 1/2 (y_n - t_n)^2 over N = 256 random samples.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
    import torch
except ImportError as e:  # torch or numpy missing: nothing to compare with
    print(f"peer benchmark: {e}; install Debian's python3-torch and python3-numpy "
          "and run it with /usr/bin/python3", file=sys.stderr)
    sys.exit(0)

NETWORKS = [
    ("30-31-1", [30, 31, 1]),
    ("50-96-1", [50, 96, 1]),
    ("36-64-40-1", [36, 64, 40, 1]),
    ("100-196-1", [100, 196, 1]),
]
N = 256


def nparams(sizes):
    return sum(o * i + o for i, o in zip(sizes[:-1], sizes[1:]))


def median_time(fn, reps, slow=20.0):
    """Median of reps runs after a warm-up run (only the warm-up when it
    takes longer than slow seconds); runs shorter than 0.1 s repeat fn."""
    t = time.perf_counter()
    fn()
    d = time.perf_counter() - t
    if d > slow:
        return d, 1
    calls = 1 if d >= 0.1 else int(0.1 / max(d, 1e-6)) + 1
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        ts.append((time.perf_counter() - t) / calls)
    ts.sort()
    m = len(ts) // 2
    return (ts[m] if len(ts) % 2 else (ts[m - 1] + ts[m]) / 2), reps


class Net:
    """The network as a function of its flat parameter vector, in the
    toolkit's order: per layer W (out x in, row-major), then b."""

    def __init__(self, sizes, X, Y):
        self.sizes, self.X, self.Y = sizes, X, Y

    def forward(self, theta):
        z, o = self.X, 0
        L = len(self.sizes) - 1
        for l, (i, k) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            Wl = theta[o:o + k * i].view(k, i)
            b = theta[o + k * i:o + k * i + k]
            o += k * i + k
            z = z @ Wl.T + b
            if l < L - 1:
                z = torch.tanh(z)
        return z

    def loss(self, theta):
        return 0.5 * ((self.forward(theta) - self.Y) ** 2).sum()


def torch_times(net, theta0, reps, inverse, lam, want_mats):
    W = theta0.numel()
    th = theta0.clone().requires_grad_(True)
    v = torch.sin(torch.arange(W, dtype=torch.float64))
    res, mats = {}, {}

    def grad():
        E = net.loss(th)
        return torch.autograd.grad(E, th)[0]

    def hv():
        E = net.loss(th)
        (g,) = torch.autograd.grad(E, th, create_graph=True)
        return torch.autograd.grad(g, th, v)[0]

    def hess_plain():
        return torch.autograd.functional.hessian(net.loss, theta0)

    def hess_vec():
        return torch.autograd.functional.hessian(net.loss, theta0, vectorize=True)

    def hess_chunked(chunk=1000):
        # Rows of H in batches of unit vectors through one graph of the
        # gradient: vectorize=True without its W-wide batch.
        E = net.loss(th)
        (g,) = torch.autograd.grad(E, th, create_graph=True)
        H = torch.empty(W, W, dtype=torch.float64)
        for lo in range(0, W, chunk):
            hi = min(lo + chunk, W)
            e = torch.zeros(hi - lo, W, dtype=torch.float64)
            e[torch.arange(hi - lo), torch.arange(lo, hi)] = 1
            (rows,) = torch.autograd.grad(g, th, e, retain_graph=True, is_grads_batched=True)
            H[lo:hi] = rows
        return H

    def gn():
        J = torch.autograd.functional.jacobian(lambda t: net.forward(t).reshape(-1), theta0, vectorize=True)
        return J.T @ J

    with torch.no_grad():
        pass
    res["grad"] = median_time(grad, reps)
    res["hv"] = median_time(hv, reps)
    # The exact Hessian: the fastest of torch's plain and vectorised
    # forms (the vectorised one whole only while its batch fits in memory)
    # and the chunked batches.
    forms = {"chunked": hess_chunked}
    if W <= 6000:
        forms["vectorize"] = hess_vec
    if W <= 1500:
        forms["plain"] = hess_plain
    best, how = None, None
    for name, fn in forms.items():
        t = median_time(fn, reps if W <= 6000 else 1)
        if best is None or t[0] < best[0]:
            best, how = t, name
    res["exact"] = best
    res["exact_form"] = how
    res["gn"] = median_time(gn, reps)
    G = gn().detach()
    if inverse:
        A = G + lam * torch.eye(W, dtype=torch.float64)

        def inv():
            return torch.cholesky_inverse(torch.linalg.cholesky(A))

        res["inverse"] = median_time(inv, reps)
    if want_mats:
        mats["h"] = hess_chunked().detach().numpy()
        mats["g"] = G.numpy()
    return res, mats


def torch_dgemm(reps):
    n = 2000
    g = torch.Generator().manual_seed(3)
    a = torch.randn(n, n, dtype=torch.float64, generator=g)
    b = torch.randn(n, n, dtype=torch.float64, generator=g)
    t, _ = median_time(lambda: a @ b, reps)
    return 2 * n ** 3 / t / 1e9


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "unknown"


def go_build(root, tags, out):
    cmd = ["go", "build"] + (["-tags", tags] if tags else []) + ["-o", out, "./benchmarks/peer"]
    subprocess.run(cmd, cwd=root, check=True)


def go_times(binary, d, reps, inverse, lam, write, dgemm):
    cmd = [binary, "-dir", d, "-reps", str(reps), "-inverse=" + ("true" if inverse else "false"),
           "-lambda", repr(lam)]
    if write:
        cmd.append("-write")
    if dgemm:
        cmd.append("-dgemm")
    p = subprocess.run(cmd, check=True, capture_output=True, text=True)
    if p.stderr.strip():
        print(p.stderr.strip(), file=sys.stderr)
    return json.loads(p.stdout)


def fmt_t(s):
    if s is None:
        return "—"
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def ratio(a, b):
    return "—" if a is None or b is None else f"{a / b:.1f}×"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="results/peer.md")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="W of about 1 000 only")
    ap.add_argument("--no-openblas", action="store_true", help="skip the OpenBLAS build")
    ap.add_argument("--inverse-max", type=int, default=5009, help="largest W for the damped inverse")
    ap.add_argument("--lambda", dest="lam", type=float, default=1e-2, help="damping of the inverse")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    args = ap.parse_args()
    root = subprocess.run(["go", "list", "-m", "-f", "{{.Dir}}"], capture_output=True, text=True,
                          check=True).stdout.strip()
    torch.set_num_threads(args.threads)
    nets = NETWORKS[:1] if args.quick else NETWORKS
    start = time.time()
    load0 = load_average()
    tmp = tempfile.mkdtemp(prefix="peer-")
    try:
        builds = [("pure Go", "")] + ([] if args.no_openblas else [("OpenBLAS", "openblas")])
        bins = {}
        for name, tags in builds:
            bins[name] = os.path.join(tmp, "peer-" + (tags or "gonum"))
            go_build(root, tags, bins[name])
        rows, machine, checks = [], {}, []
        for i, (label, sizes) in enumerate(nets):
            W = nparams(sizes)
            print(f"{label}, W = {W}", file=sys.stderr)
            rng = np.random.default_rng(1000 + i)
            theta = np.concatenate([
                np.concatenate([rng.standard_normal(o * k) / np.sqrt(k), 0.1 * rng.standard_normal(o)])
                for k, o in zip(sizes[:-1], sizes[1:])])
            X = rng.standard_normal((N, sizes[0]))
            Y = rng.standard_normal((N, sizes[-1]))
            d = os.path.join(tmp, f"net{i}")
            os.makedirs(d)
            theta.astype("<f8").tofile(os.path.join(d, "theta.bin"))
            X.astype("<f8").tofile(os.path.join(d, "x.bin"))
            Y.astype("<f8").tofile(os.path.join(d, "y.bin"))
            with open(os.path.join(d, "spec.json"), "w") as f:
                json.dump({"sizes": sizes, "n": N}, f)
            inverse = W <= args.inverse_max
            write = i == 0
            go = {}
            for name, _ in builds:
                go[name] = go_times(bins[name], d, args.reps, inverse, args.lam, write and name == "pure Go", True)
                if i == 0:
                    machine[name] = go[name]
            net = Net(sizes, torch.from_numpy(X), torch.from_numpy(Y))
            tt, mats = torch_times(net, torch.from_numpy(theta.copy()), args.reps, inverse, args.lam, write)
            tt["dgemm"] = torch_dgemm(args.reps)
            tt["load"] = load_average()
            if write:
                for key, what in (("h", "exact H"), ("g", "Gauss–Newton G")):
                    mine = np.fromfile(os.path.join(d, key + ".bin"), dtype="<f8").reshape(W, W)
                    ref = mats[key]
                    checks.append((label, W, what, float(np.abs(mine - ref).max() / np.abs(ref).max())))
            rows.append((label, W, go, tt))
        tdgemm = [r[3]["dgemm"] for r in rows]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load1 = load_average()
    wall = time.time() - start
    write_report(args, rows, machine, checks, tdgemm, load0, load1, wall, builds)


GOALS = {  # exact H speed-up over torch wanted at W of about 5 000 and up
    "OpenBLAS": 15.0,
    "pure Go": 4.0,
}


def write_report(args, rows, machine, checks, tdgemm, load0, load1, wall, builds):
    ops = [("exact", "exact H, dense"), ("gn", "Gauss–Newton G, dense"), ("hv", "Hv (one product)"),
           ("grad", "gradient"), ("inverse", "damped inverse (G + λI)⁻¹")]
    L = []
    L.append("# Peer benchmark: the toolkit against PyTorch\n")
    cmd = "/usr/bin/python3 benchmarks/peer/peer.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    L.append(f"- command: `{cmd}` (one run, {wall:.0f} s wall)")
    L.append(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    L.append(f"- machine: {cpu_model()}, {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}; "
             f"load average (1, 5, 15 min) {load0} at the start, {load1} at the end "
             "(the machine is shared: times are noisy, ratios within one run are what counts)")
    L.append(f"- PyTorch {torch.__version__}, {torch.get_num_threads()} threads, NumPy {np.__version__}, "
             f"Python {platform.python_version()}")
    for name, _ in builds:
        m = machine[name]
        line = f"- toolkit, {name}: {m['go']}, GOMAXPROCS {m['gomaxprocs']}, BLAS: {m['blas']}"
        L.append(line)
        if m.get("warning"):
            L.append(f"  - {m['warning']}")
    L.append(f"- OPENBLAS_CORETYPE: {os.environ.get('OPENBLAS_CORETYPE', 'unset')}")
    L.append(f"- networks: tanh MLPs with a linear output, summed squared error, N = {N} random samples "
             "(standard normal inputs and targets), all parameters covered, float64 throughout; "
             f"λ = {args.lam:g}; each time is the median of {args.reps} runs after a warm-up "
             "(a single run when the warm-up took over 20 s)")
    L.append("- torch's computations: gradient by `autograd.grad`; Hv by double back-propagation; exact H by the "
             "fastest of `autograd.functional.hessian` (plain, W ≤ 1 500; `vectorize=True`, W ≤ 6 000) and "
             "batches of 1 000 rows through one gradient graph (`is_grads_batched`); G = JᵀJ with J by "
             "`autograd.functional.jacobian(vectorize=True)`; inverse by `linalg.cholesky` and `cholesky_inverse`")
    L.append("- toolkit's: `nn.Network.Gradient`, `hessian.Exact.MulVecTo`, `Exact.DenseTo`, "
             "`GaussNewton.DenseTo`, `hessian.DampedInverse`")
    L.append("")
    L.append("## Times\n")
    head = "| network | W | computation | torch |"
    sep = "|---|---:|---|---:|"
    for name, _ in builds:
        head += f" {name} | speed-up, {name} |"
        sep += "---:|---:|"
    L.append(head)
    L.append(sep)
    for label, W, go, tt in rows:
        for key, desc in ops:
            t = tt.get(key)
            t = t[0] if t else None
            if key == "exact" and t is not None:
                desc += f" (torch: {tt['exact_form']})"
            line = f"| {label} | {W} | {desc} | {fmt_t(t)} |"
            for name, _ in builds:
                g = go[name]["seconds"].get(key)
                line += f" {fmt_t(g)} | {ratio(t, g)} |"
            L.append(line)
    L.append("")
    L.append("Speed-up: torch's time over the toolkit's. — : not run (the damped inverse stops at "
             f"W = {args.inverse_max}: O(W³), and at W = 20 000 most of an hour in pure Go).\n")
    L.append("## DGEMM rates\n")
    L.append("Measured with each network, in the same process as its times (2000×2000, 2n³ flops; torch.mm and "
             "mat.Dense.Mul), with the load average after the network's torch timings:\n")
    head = "| network | torch |" + "".join(f" {name} |" for name, _ in builds) + " load average |"
    L.append(head)
    L.append("|---|---:|" + "---:|" * len(builds) + "---|")
    for label, W, go, tt in rows:
        L.append(f"| {label} | {tt['dgemm']:.1f} GFLOP/s |" +
                 "".join(f" {go[name]['dgemm_gflops']:.1f} GFLOP/s |" for name, _ in builds) + f" {tt['load']} |")
    L.append("")
    L.append("## Ratios and rates\n")
    head = "| network | W |"
    sep = "|---|---:|"
    for name, _ in builds:
        head += f" exact / G, {name} | Hv / gradient, {name} | G GFLOP/s (% of DGEMM), {name} | exact GFLOP/s, {name} |"
        sep += "---:|---:|---:|---:|"
    L.append(head)
    L.append(sep)
    for label, W, go, tt in rows:
        line = f"| {label} | {W} |"
        for name, _ in builds:
            s = go[name]["seconds"]
            dg = go[name]["dgemm_gflops"]
            gf = N * W * W / s["gn"] / 1e9
            ef = N * W * W / s["exact"] / 1e9
            line += f" {s['exact'] / s['gn']:.2f} | {s['hv'] / s['grad']:.2f} | {gf:.1f} ({100 * gf / dg:.0f} %) | {ef:.1f} |"
        L.append(line)
    L.append("")
    L.append("Rates count N·W² flops for both dense builds (a multiply–add per sample and entry of the upper "
             "triangle); percentages are of the same build's DGEMM rate measured with the network.\n")
    L.append("## Goals\n")
    for name, _ in builds:
        want = GOALS[name]
        for label, W, go, tt in rows:
            if W < 4000:
                continue
            t, g = tt["exact"][0], go[name]["seconds"]["exact"]
            sp = t / g
            verdict = "met" if sp >= want else f"not met (gap {want / sp:.2f}×)"
            L.append(f"- exact H, {name}, {label} (W = {W}): {sp:.1f}× torch, goal ≥ {want:g}×: {verdict}")
    L.append("")
    if checks:
        L.append("## Agreement\n")
        for label, W, what, rel in checks:
            L.append(f"- {label} (W = {W}): {what}, toolkit (pure Go) against torch: max |difference| / max |entry| = {rel:.2g}")
        L.append("")
    out = args.out
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(L) + "\n")
    os.replace(tmp, out)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
