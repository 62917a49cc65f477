#!/bin/bash
# Submit one embedding job as three SLURM jobs: train the index once, embed SHARDS array tasks
# after it, merge after them. Prints the three job ids.
#   INPUT='corpus/*.jsonl.zst' OUT=/shared/emb SHARDS=16 examples/slurm/submit.sh
# Optional: IDX (index folder, default $OUT.index), MERGED (default $OUT.npy), MODEL_ARGS (model and
# runtime flags of train and embed, e.g. "--model BAAI/bge-small-en-v1.5"), EMBED_ARGS (embed only,
# e.g. "--id-field id"), IGNITE (the command, default ignite), SBATCH_ARGS (e.g. "--partition gpu").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${INPUT:?set INPUT to the input files or glob}" "${OUT:?set OUT to the output folder (on a shared filesystem)}"
export INPUT OUT SHARDS=${SHARDS:-4} IDX=${IDX:-$OUT.index} MERGED=${MERGED:-$OUT.npy}
export MODEL_ARGS=${MODEL_ARGS:-} EMBED_ARGS=${EMBED_ARGS:-} IGNITE=${IGNITE:-ignite}
# shellcheck disable=SC2086  # SBATCH_ARGS holds several flags
train=$(sbatch --parsable ${SBATCH_ARGS:-} "$here/train.sbatch")
# shellcheck disable=SC2086
array=$(sbatch --parsable ${SBATCH_ARGS:-} --dependency="afterok:$train" --array="0-$((SHARDS - 1))" "$here/embed.sbatch")
# afterany, not afterok: a task killed and requeued leaves a failure on the array's record even
# after its rerun succeeds; `ignite merge` itself refuses, naming the shard, unless every one is complete.
# shellcheck disable=SC2086
merge=$(sbatch --parsable ${SBATCH_ARGS:-} --dependency="afterany:$array" "$here/merge.sbatch")
echo "$train $array $merge"
