#!/bin/bash
# Multi-node data-parallel training on SLURM: one torchrun per node, all meeting at the first node.
#
#   sbatch --nodes 2 examples/slurm_ddp.sh --dataset imagenet --data-dir /data/imagenet \
#       --arch convmixer --width 512 --depth 16 --kernel 8 --patch 7 --learn chans --out runs/in1k-chans
#
# Arguments are passed to `spatialmix train`. Resubmit the same job with --resume added after a
# preemption: the run continues from last.safetensors (SLURM's SIGTERM makes every rank stop and save).
#
#SBATCH --job-name=spatialmix-ddp
#SBATCH --ntasks-per-node=1
#SBATCH --gres=gpu:8
#SBATCH --cpus-per-task=64
#SBATCH --time=24:00:00
#SBATCH --signal=TERM@120
#SBATCH --output=slurm-%j.out
set -euo pipefail
head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
srun torchrun \
    --nnodes "$SLURM_JOB_NUM_NODES" --nproc-per-node "${GPUS_PER_NODE:-8}" \
    --rdzv-id "$SLURM_JOB_ID" --rdzv-backend c10d --rdzv-endpoint "$head:29500" \
    -m spatialmix_cli train --sync-bn "$@"
