#!/bin/bash
# Fan a recipe's points out over a SLURM job array: one array task per point.
#
#   n=$(spatialmix train --recipe recipes/fig5.yaml --list | wc -l)
#   sbatch --array=0-$((n - 1)) examples/slurm_sweep.sh recipes/fig5.yaml
#
# Each task trains point $SLURM_ARRAY_TASK_ID into its own run directory (<out>/<key>-<value>_...).
# Finished points are skipped, so resubmitting the same array after a failure or a preemption only runs
# what is missing; --resume continues points that were killed mid-run. A point claimed by another
# process (a second array, or someone running the recipe by hand) is skipped, never trained twice.
# Then: spatialmix report runs/fig5 --out report
#
#SBATCH --job-name=spatialmix-sweep
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --time=04:00:00
#SBATCH --output=slurm-%A_%a.out
set -euo pipefail
recipe=${1:?usage: sbatch --array=0-N examples/slurm_sweep.sh RECIPE.yaml}
exec spatialmix train --recipe "$recipe" --index "${SLURM_ARRAY_TASK_ID:?run under sbatch --array}" \
    --resume --json
