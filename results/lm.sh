#!/usr/bin/env bash
# Levenberg–Marquardt against L-BFGS and Adam: steps (epochs) and wall time
# of `prune train` to a training mean loss, over seeds. Writes lm.csv to the
# current directory. Usage: results/lm.sh [PRUNE]
set -euo pipefail
prune=${1:-prune}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "problem,arch,loss,optimizer,seed,target,epochs,stopped,train_mean_loss,seconds" > lm.csv
run() { # problem arch act loss target epochs-lm epochs-other extra...
	local problem=$1 arch=$2 act=$3 loss=$4 target=$5
	shift 5
	for opt in lm lbfgs adam; do
		local epochs=2000
		[ "$opt" = lm ] && epochs=500
		for seed in 1 2 3 4 5; do
			"$prune" train --quiet --data "$problem" --arch "$arch" --act "$act" --loss "$loss" --optimizer "$opt" \
				--epochs "$epochs" --tolerance "$target" --seed "$seed" "$@" --overwrite -o "$tmp/m.json" --json >"$tmp/s.json"
			python3 - "$tmp/s.json" "$tmp/m.json" "$problem" "$arch" "$loss" "$opt" "$seed" "$target" >>lm.csv <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); m = json.load(open(sys.argv[2]))
meta = m.get("meta", {})
print(",".join(sys.argv[3:9] + [str(s["epochs"]), s.get("stopped", ""), repr(s["train"]["mean_loss"]), str(meta["duration_s"])]))
PY
		done
	done
}
run sine 1-10-1 tanh,linear mse 0.0046
run monks1 17-3-1 tanh,sigmoid mse 0.001
run monks1 17-3-1 tanh,sigmoid bce 0.01
run monks3 17-2-1 tanh,sigmoid mse 0.02
