#!/usr/bin/env bash
# Fast retraining after adding or removing samples: `prune retrain` (Newton
# steps from the old optimum with the OBS rank-one update of the inverse)
# against L-BFGS retraining from the old weights (--compare), on noisy sine
# and MONK-1 (UCI splits). Writes retrain.csv to the current directory.
# Usage: results/retrain.sh [PRUNE] [MONKS_DIR]
set -euo pipefail
prune=${1:-prune}
monks=${2:-../../shared/data/monks}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "problem,arch,change,k,steps,curvature,n_after,objective_old,objective_newton,objective_retrained,gap_closed,rel_distance,setup_s,update_s,retrain_s,retrain_iterations" > retrain.csv

"$prune" train --quiet --data sine --arch 1-10-1 --optimizer lbfgs --epochs 3000 --weight-decay 1e-3 --seed 1 -o "$tmp/sine.json" >/dev/null
"$prune" laplace --quiet --model "$tmp/sine.json" --split train -o "$tmp/sine-train.csv" >/dev/null
"$prune" laplace --quiet --model "$tmp/sine.json" --split test -o "$tmp/sine-test.csv" >/dev/null
"$prune" train --quiet --data monks1 --monks-dir "$monks" --arch 17-3-1 --act tanh,sigmoid --loss mse --optimizer lbfgs \
	--epochs 3000 --weight-decay 1e-3 --seed 1 -o "$tmp/monks1.json" >/dev/null

# samples PROBLEM SOURCE K OUT: the first K samples of the split as CSV rows.
samples() {
	python3 - "$@" <<'PY'
import csv, sys
problem, source, k, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rows = []
if problem == "sine":
	for r in list(csv.DictReader(open(source))):
		rows.append([r["x"], r["target"]])
else:
	sizes = [3, 3, 2, 3, 4, 2]
	train = set(l.split()[1:7] and " ".join(l.split()[1:7]) for l in open(source.replace(".test", ".train")) if l.strip())
	for l in open(source):
		f = l.split()
		if not f:
			continue
		if source.endswith(".test") and " ".join(f[1:7]) in train:
			continue
		x = []
		for v, n in zip(f[1:7], sizes):
			x += ["1" if int(v) == i + 1 else "0" for i in range(n)]
		rows.append(x + [f[0]])
with open(out, "w") as fh:
	for r in rows[:k]:
		fh.write(",".join(r) + "\n")
PY
}

for problem in sine monks1; do
	if [ "$problem" = sine ]; then addsrc="$tmp/sine-test.csv" remsrc="$tmp/sine-train.csv" arch=1-10-1
	else addsrc="$monks/monks-1.test" remsrc="$monks/monks-1.train" arch=17-3-1; fi
	for change in add remove; do
		for k in 1 5 20; do
			src=$addsrc
			[ "$change" = remove ] && src=$remsrc
			samples "$problem" "$src" "$k" "$tmp/s.csv"
			for steps in 1 3; do
				for curv in gn exact; do
					flag=""
					[ "$curv" = exact ] && flag=--exact
					"$prune" retrain --quiet --model "$tmp/$problem.json" --"$change" "$tmp/s.csv" --steps "$steps" $flag --compare \
						--overwrite -o "$tmp/out.json" --json >"$tmp/r.json"
					python3 - "$tmp/r.json" "$problem" "$arch" "$change" "$k" >>retrain.csv <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); c = s["compare"]
print(",".join(sys.argv[2:6] + [str(s["steps"]), s["curvature"], str(s["n"])] + [repr(v) for v in (
	s["objective_old"], s["objective_newton"], c["objective_retrained"], c["gap_closed"], c["rel_distance"],
	s["setup_s"], s["update_s"], c["seconds"])] + [str(c["epochs"])]))
PY
				done
			done
		done
	done
done
