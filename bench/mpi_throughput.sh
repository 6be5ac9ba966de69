#!/usr/bin/env bash
# The cost of the MPI path: the same 2,000-image MI-FGSM evaluation (shipped ResNet-20, CIFAR-10
# test images 0-1999, eps 8/255, 10 steps) run as 1 process x 2 threads and as 2 processes x 1
# thread (mpirun), each REPS times (default 3); prints images/s (wall clock, attack + metrics +
# writing) per run and the median of each, and checks that both layouts wrote identical
# samples.csv and metrics.json.
#
#   bash bench/mpi_throughput.sh [REPS]        (after scripts/setup.sh; writes under runs/bench-mpi)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
bin=./build/sdsgsm
out=runs/bench-mpi
command -v mpirun >/dev/null || { echo "mpirun not found (apt install openmpi-bin)" >&2; exit 1; }
mkdir -p "$out"
args=(attack --attack mifgsm --model resnet20 --data data/cifar10 --count 2000 --sheet 0)
rate() { python3 -c "import json,sys; print('%.1f' % json.load(open(sys.argv[1]))['images_per_second'])" "$1/timing.json"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
one=() two=()
for r in $(seq 1 "$reps"); do
  "$bin" -q --threads 2 "${args[@]}" --out "$out/1x2" --restart >/dev/null
  one+=("$(rate "$out/1x2")")
  mpirun --allow-run-as-root --oversubscribe -np 2 "$bin" -q --threads 1 "${args[@]}" --out "$out/2x1" --restart >/dev/null
  two+=("$(rate "$out/2x1")")
  echo "run $r: 1 process x 2 threads ${one[-1]} img/s, 2 processes x 1 thread ${two[-1]} img/s"
done
cmp -s "$out/1x2/samples.csv" "$out/2x1/samples.csv" && cmp -s "$out/1x2/metrics.json" "$out/2x1/metrics.json" \
  && same="identical" || same="DIFFERENT"
echo
echo "| layout | images/s (median of $reps) | runs |"
echo "|---|---|---|"
echo "| 1 process x 2 threads | $(median "${one[@]}") | ${one[*]} |"
echo "| 2 processes x 1 thread (mpirun) | $(median "${two[@]}") | ${two[*]} |"
echo
echo "samples.csv and metrics.json of the two layouts: $same"
