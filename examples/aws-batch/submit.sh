#!/bin/bash
# Train, embed as an array job of SHARDS children, merge: three AWS Batch jobs chained by
# dependencies, all from the definition in job-definition.json (register it first); train and
# merge override its command.
#   QUEUE=gpu-spot SHARDS=8 examples/aws-batch/submit.sh
set -euo pipefail
: "${QUEUE:?set QUEUE to the job queue}"
SHARDS=${SHARDS:-8}
train=$(aws batch submit-job --job-name ignite-train --job-queue "$QUEUE" --job-definition ignite-embed \
  --container-overrides '{"command": ["index", "train", "--input", "/data/corpus", "--index", "/data/emb.index"]}' \
  --query jobId --output text)
# AWS_BATCH_JOB_ARRAY_INDEX numbers the children 0..SHARDS-1; the array size is not in the
# environment, so --shards (the shards parameter) must equal --array-properties size.
array=$(aws batch submit-job --job-name ignite-embed --job-queue "$QUEUE" --job-definition ignite-embed \
  --array-properties "size=$SHARDS" --parameters "shards=$SHARDS" --depends-on "jobId=$train" \
  --query jobId --output text)
merge=$(aws batch submit-job --job-name ignite-merge --job-queue "$QUEUE" --job-definition ignite-embed \
  --depends-on "jobId=$array" \
  --container-overrides '{"command": ["merge", "/data/emb", "--output", "/data/emb.npy", "--index", "/data/emb.index", "--overwrite"]}' \
  --query jobId --output text)
echo "$train $array $merge"
